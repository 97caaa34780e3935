#!/usr/bin/env bash
# Every figure of docs/BENCHMARKS.md sections 2-5, in one run on this machine:
#  1. the load engine against wrk on the bare reference server (same connections);
#  2. compare: purchases and sold-out rejections, gateway vs reference server;
#  3. flash: USERS users on campaign bench-flash (10,000 units), verified, with chart;
#  4. the lifecycle mix on bench-lifecycle: pay 60%, cancel 20%, let 20% expire;
#  5. steady: open-loop constant rates with the default request mix;
#  6. persistence: each store's insert rate alone, and the flash of 3. on PostgreSQL (needs a
#     PostgreSQL that user postgres reaches without a password on 127.0.0.1:5432).
# Sections 2-5 are self-contained rehearsals: each starts a private Redis and a fresh gateway
# from bench/bench.toml, runs, verifies and stops them. Needs wrk (section 1) and redis-server.
# Usage: bench/rehearse.sh [users] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
conns=${2:-64}
out=docs/bench
mkdir -p "$out"
cargo build --release -q -p flashgate -p flashgate-bench
bench=target/release/flashgate-bench
rehearse() { "$bench" rehearse --config bench/bench.toml "$@"; }
cleanup() { kill "${ref_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

echo "== 1. load engine vs wrk against the reference server, $conns connections, 8 s each"
"$bench" reference-server --listen 127.0.0.1:8090 2>/dev/null & ref_pid=$!
sleep 0.5
rate() { sed -n 's/^requests .*(\([0-9]*\)\/s).*/\1/p'; }
echo "| round | wrk -t1 | wrk -t2 | flashgate-bench --threads 1 | flashgate-bench --threads 2 | ratio t1/wrk-t1 | ratio t2/wrk-t1 |"
echo "|---|---|---|---|---|---|---|"
for round in 1 2 3; do
  w1=$(wrk -t1 -c"$conns" -d8s http://127.0.0.1:8090/ | sed -n 's/^Requests\/sec: *//p')
  b1=$("$bench" plain --addr 127.0.0.1:8090 --connections "$conns" --threads 1 --duration 8s 2>/dev/null | rate)
  w2=$(wrk -t2 -c"$conns" -d8s http://127.0.0.1:8090/ | sed -n 's/^Requests\/sec: *//p')
  b2=$("$bench" plain --addr 127.0.0.1:8090 --connections "$conns" --threads 2 --duration 8s 2>/dev/null | rate)
  printf "| %d | %.0f | %.0f | %d | %d | %.2f | %.2f |\n" "$round" "$w1" "$w2" "$b1" "$b2" \
    "$(echo "$b1 / $w1" | bc -l)" "$(echo "$b2 / $w1" | bc -l)"
done
kill $ref_pid; unset ref_pid

echo "== 2. compare: gateway vs reference server, 3 alternating rounds of 8 s"
for campaign in bench-open bench-soldout; do
  rehearse compare --campaign "$campaign" --connections "$conns" --duration 8s --rounds 3 \
    --json "$out/compare-$campaign.json"
done

echo "== 3. flash: $users users on 10,000 units"
rehearse flash --campaign bench-flash --users "$users" --connections "$conns" \
  --json "$out/flash-100k.json" --plot "$out/flash-100k.svg"

echo "== 4. lifecycle: 20,000 users on 2,000 units; 60% pay, 20% cancel, 20% expire"
rehearse flash --campaign bench-lifecycle --users 20000 --connections "$conns" \
  --pay-share 0.6 --cancel-share 0.2 --json "$out/lifecycle.json"

echo "== 5. steady: open loop, default mix, 20 s per rate"
for r in 5000 10000 20000; do
  rehearse steady --campaign bench-open --rate "$r" --duration 20s --connections "$conns" \
    --json "$out/steady-$r.json" --plot "$out/steady-$r.svg"
done

echo "== 6. persistence: insert rate of each store alone (200,000 orders, batches of 512, one writer)"
cargo test --release -q -p flashgate --lib store::tests::writes::insert_rate -- --ignored --nocapture \
  | grep orders/s
echo "== 6. the flash of 3. again with its lag sampled, on SQLite, then on PostgreSQL"
rehearse flash --campaign bench-flash --users "$users" --connections "$conns" \
  --json "$out/flash-100k-sqlite.json"
psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS flashgate_bench"
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE flashgate_bench"
rehearse --store-url postgres://postgres@127.0.0.1:5432/flashgate_bench flash \
  --campaign bench-flash --users "$users" --connections "$conns" \
  --json "$out/flash-100k-postgres.json"
