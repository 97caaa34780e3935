#!/usr/bin/env bash
# A flash-sale rehearsal and the load engine's yardstick, in one run:
#  1. flashgate-bench against the bare reference server vs wrk -t1, same connections;
#  2. a flash sale of USERS users on campaign bench-flash (10,000 units) with verification,
#     JSON report and SVG chart under docs/bench/.
# Needs wrk and the shared Redis on 127.0.0.1:6379. Usage: bench/flash.sh [users] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
conns=${2:-64}
work=/tmp/flashgate-bench
mkdir -p "$work" docs/bench
cargo build --release -q -p flashgate -p flashgate-bench
bin=target/release
cleanup() { kill "${ref_pid:-}" "${gw_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

echo "== 1. load engine vs wrk -t1 against the reference server, $conns connections"
"$bin/flashgate-bench" reference-server --listen 127.0.0.1:8090 2>/dev/null & ref_pid=$!
sleep 0.5
# Three alternating pairs: single runs on a shared VM swing by 10-15%.
for round in 1 2 3; do
  w=$(wrk -t1 -c"$conns" -d8s http://127.0.0.1:8090/ | sed -n 's/^Requests\/sec: *//p')
  b=$("$bin/flashgate-bench" flash --addr 127.0.0.1:8090 --config bench/bench.toml \
    --campaign bench-open --users 20000 --tries 30 --connections "$conns" --no-verify 2>/dev/null \
    | head -1 | sed -n 's/.*(\([0-9]*\)\/s).*/\1/p')
  printf "round %d: wrk %.0f req/s, flashgate-bench %d req/s, ratio %.2f\n" "$round" "$w" "$b" "$(echo "$b / $w" | bc -l)"
done
kill $ref_pid; unset ref_pid

echo "== 2. flash sale: $users users on 10,000 units"
redis-cli --scan --pattern 'fg:{bench-flash}*' | xargs -r redis-cli del >/dev/null
rm -f "$work"/orders.db*
RUST_LOG=warn "$bin/flashgate" --config bench/bench.toml 2>"$work/gateway.log" & gw_pid=$!
for _ in $(seq 100); do curl -sf localhost:8088/healthz >/dev/null && break; sleep 0.1; done
"$bin/flashgate-bench" flash --addr 127.0.0.1:8088 --config bench/bench.toml --campaign bench-flash \
  --users "$users" --connections "$conns" \
  --json docs/bench/flash-100k.json --plot docs/bench/flash-100k.svg
