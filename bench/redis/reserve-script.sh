#!/usr/bin/env bash
# The reserve script alone, driven by redis-benchmark (16 clients, no HTTP, no gateway): the
# ceiling Redis puts on reservations on this machine, per batch size. Uses a throwaway campaign
# on the Redis at 127.0.0.1:6379 and deletes it afterwards.
# Usage: bench/redis/reserve-script.sh [reservations per batch size]
set -euo pipefail
cd "$(dirname "$0")/../.."
total=${1:-160000}
c='{fg-bench-script}'
keys="fg:$c:meta fg:$c:stock fg:$c:buyers fg:$c:orders fg:$c:deadlines fg:$c:journal"
cleanup() { redis-cli del $keys >/dev/null; }
trap cleanup EXIT
cleanup
redis-cli hset "fg:$c:meta" sku S unit_price_cents 100 per_user_limit 1000000000 pay_timeout_ms 900000 >/dev/null
redis-cli set "fg:$c:stock" 1000000000000 >/dev/null
sha=$(redis-cli script load "$(cat lua/reserve.lua)")
pid=$(redis-cli info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r')
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }

echo "| reservations per call | calls/s | reservations/s | Redis CPU per reservation |"
echo "|---|---|---|---|"
for batch in 1 8 32; do
  args=""
  for _ in $(seq "$batch"); do args="$args u:__rand_int__ __rand_int__ 1"; done
  calls=$((total / batch))
  before=$(cpu)
  out=$(redis-benchmark -q -n "$calls" -c 16 -r 1000000000 EVALSHA "$sha" 6 $keys 1795322702000 $args 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1)
  after=$(cpu)
  rps=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p')
  printf "| %d | %.0f | %.0f | %.1f µs |\n" "$batch" "$rps" "$(echo "$rps * $batch" | bc -l)" \
    "$(echo "($after - $before) * 10000 / ($calls * $batch)" | bc -l)"
done
