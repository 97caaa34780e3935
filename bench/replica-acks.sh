#!/usr/bin/env bash
# What `redis.replica_acks` costs on the purchase path: `compare` (the gateway, then the
# reference server it starts itself) on bench-open, the gateway on a private Redis master with one
# replica on the same machine, replica_acks off and on, in ABBA order (off, on, on, off) so drift
# over the run cancels. Each side gets a fresh gateway and SQLite store.
# Usage: bench/replica-acks.sh [out_dir]
# SIDES="off:0 on:1 on:1 off:0" (name:replica_acks[:flashgate binary] …) overrides the sides.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
out=$(realpath -m "${1:-docs/bench/replica-acks}")
mkdir -p "$out"
cargo build --release -q -p flashgate -p flashgate-bench
bin=${CARGO_TARGET_DIR:-$here/target}/release
work=$(mktemp -d)
master=$((20000 + RANDOM % 20000))
replica=$((master + 1))
gw=$((master + 2))
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/master" "$work/replica"
redis-server --port "$master" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/master" \
  >"$work/master.log" 2>&1 &
pids+=($!)
redis-server --port "$replica" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/replica" \
  --replicaof 127.0.0.1 "$master" >"$work/replica.log" 2>&1 &
pids+=($!)
until redis-cli -p "$replica" INFO replication 2>/dev/null | grep -q master_link_status:up; do
  sleep 0.2
done

run() { # name acks round gateway_binary
  local name=$1 acks=$2 round=$3 gateway_bin=$4
  local config="$work/gateway-$name-$round.toml"
  sed -e "s|^url = .*|url = \"redis://127.0.0.1:$master\"\nreplica_acks = $acks|" \
    -e "s|^listen = .*|listen = \"127.0.0.1:$gw\"|" \
    -e "s|^path = .*|path = \"$work/orders-$name-$round.db\"|" bench/bench.toml >"$config"
  "$gateway_bin" --config "$config" >"$work/gateway-$name-$round.log" 2>&1 &
  local gpid=$!
  until curl -sf "http://127.0.0.1:$gw/healthz" >/dev/null; do sleep 0.1; done
  "$bin/flashgate-bench" compare --addr "127.0.0.1:$gw" --config "$config" --campaign bench-open \
    --connections 64 --duration 8s --rounds 3 --json "$out/$name-$round.json" \
    >"$out/$name-$round.txt" 2>&1
  kill -TERM "$gpid"
  wait "$gpid" || true
  python3 - "$out/$name-$round.json" "$name" "$(grep '^gateway answers' "$out/$name-$round.txt")" <<'PY'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
rounds = report["rounds"]
rate = statistics.median(r["gateway"]["requests_per_s"] for r in rounds)
p50 = statistics.median(r["gateway"]["p50_ms"] for r in rounds)
p99 = statistics.median(r["gateway"]["p99_ms"] for r in rounds)
ratios = ", ".join(f"{r['ratio']:.3f}" for r in rounds)
print(f"| {sys.argv[2]} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {report['ratio']:.3f} | {ratios} | {sys.argv[3]} |")
PY
}

echo "| replica_acks | gateway req/s (median) | p50 ms | p99 ms | ratio (median of 3) | rounds | answers |"
echo "|---|---|---|---|---|---|---|"
round=0
for side in ${SIDES:-off:0 on:1 on:1 off:0}; do
  round=$((round + 1))
  IFS=: read -r name acks binary <<<"$side"
  run "$name" "$acks" "$round" "${binary:-$bin/flashgate}"
done
redis-cli -p "$master" INFO commandstats | grep -E 'cmdstat_(evalsha|wait|set):' || true
