#!/usr/bin/env bash
# Measures, in one run with the same wrk settings: the bare hyper reference server, the
# gateway's accepted-purchase path, and its sold-out path. Needs wrk (apt-get install wrk) and
# the shared Redis on 127.0.0.1:6379. Usage: bench/wrk/compare.sh [connections] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${1:-64}
secs=${2:-10}
work=/tmp/flashgate-bench
rm -rf "$work" && mkdir -p "$work"
cargo build --release -q -p flashgate -p flashgate-bench
bin=target/release
secret=$(sed -n 's/^jwt_secret = "\(.*\)"/\1/p' bench/bench.toml)

cleanup() { kill "${ref_pid:-}" "${gw_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

# Fresh benchmark campaigns (the shared Redis keeps nothing on disk; these keys are ours).
redis-cli --scan --pattern 'fg:{bench-*' | xargs -r redis-cli del >/dev/null

"$bin/flashgate-bench" mint-tokens --secret "$secret" --count 20000 --out "$work/tokens.txt"

"$bin/flashgate-bench" reference-server --listen 127.0.0.1:8090 2>/dev/null & ref_pid=$!
RUST_LOG=warn "$bin/flashgate" --config bench/bench.toml 2>"$work/gateway.log" & gw_pid=$!
for _ in $(seq 100); do
  curl -sf localhost:8090/ >/dev/null && curl -sf localhost:8088/healthz >/dev/null && break
  sleep 0.1
done

run() { # name, wrk args...
  local name=$1; shift
  echo "== $name"
  wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" | tee "$work/$name.txt"
}
run reference http://127.0.0.1:8090/
FG_TOKENS=$work/tokens.txt FG_CAMPAIGN=bench-open run purchase -s bench/wrk/purchase.lua http://127.0.0.1:8088/
FG_TOKENS=$work/tokens.txt FG_CAMPAIGN=bench-soldout run soldout -s bench/wrk/purchase.lua http://127.0.0.1:8088/

rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$work/$1.txt"; }
pct() { awk -v p="$2" '$1==p {print $2}' "$work/$1.txt"; }
non2xx() { sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$work/$1.txt"; }
ref=$(rps reference); buy=$(rps purchase); sold=$(rps soldout)
echo
echo "| run | req/s | ratio to reference | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
for name in reference purchase soldout; do
  r=$(rps $name)
  printf "| %s | %.0f | %.2f | %s | %s | %s |\n" "$name" "$r" "$(echo "$r / $ref" | bc -l)" \
    "$(pct $name 50%)" "$(pct $name 99%)" "$(non2xx $name || true)"
done
echo
echo "accepted orders in Redis: $(redis-cli hlen 'fg:{bench-open}:orders')"
