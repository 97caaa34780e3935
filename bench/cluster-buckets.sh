#!/usr/bin/env bash
# One hot campaign on a private 3-master Redis Cluster, its stock in one bucket (bench-hot-b1:
# one slot, so one master does all the work) and in eight (bench-hot-b8: every master), in
# ABBA order (b1, b8, b8, b1, …) so drift over the run cancels. Each round is a `rehearse
# --cluster` flash of USERS buyers on a fresh cluster, verified afterwards; what each master
# spent on commands comes from INFO commandstats (reset before the flash).
# Usage: bench/cluster-buckets.sh [rounds] [out_dir]    (USERS=100000 CONNECTIONS=64)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
out=${2:-docs/bench/cluster-buckets}
users=${USERS:-100000}
connections=${CONNECTIONS:-64}
mkdir -p "$out"
cargo build --release -q -p flashgate -p flashgate-bench
bench=target/release/flashgate-bench

run() { # campaign round
  "$bench" rehearse --cluster --config bench/bench.toml --redis-stats "$out/$1-$2-redis.json" \
    flash --campaign "$1" --users "$users" --connections "$connections" \
    --json "$out/$1-$2.json" >"$out/$1-$2.txt" 2>&1
  tail -n 4 "$out/$1-$2.txt" | grep -E "master" || true
}
for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="bench-hot-b1 bench-hot-b8"; else order="bench-hot-b8 bench-hot-b1"; fi
  for campaign in $order; do
    echo "round $round: $campaign"
    run "$campaign" "$round"
  done
done

# Per campaign: accepted/s (median of rounds) and Redis µs per reservation, all masters and the
# busiest one.
python3 - "$out" "$rounds" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
for c in ["bench-hot-b1", "bench-hot-b8"]:
    rate, per, busiest, masters = [], [], [], []
    for r in range(1, rounds + 1):
        run = json.load(open(f"{out}/{c}-{r}.json"))
        redis = json.load(open(f"{out}/{c}-{r}-redis.json"))
        accepted = run["accepted"]
        rate.append(run["accepted_per_s_while_stock"])
        per.append(sum(m["usec"] for m in redis) / accepted)
        busiest.append(max(m["usec"] for m in redis) / accepted)
        masters.append(sum(1 for m in redis if m["script_calls"] > 0))
    print(f"{c}: accepted/s median {statistics.median(rate):.0f} ({[round(x) for x in rate]}), "
          f"Redis µs/reservation all masters {statistics.median(per):.2f}, busiest master "
          f"{statistics.median(busiest):.2f}, masters used {max(masters)}")
PY
