#!/usr/bin/env bash
# Issue #13: accepted purchase throughput during an archive pass, against the same flash without
# one, in the same run. A store is filled once with ORDERS settled orders of a retired campaign
# (flashgate-bench archive --seed-only); every rehearsal starts from a copy of it, so every pass
# has the same work. Three gateways, interleaved round by round:
#   off    archive.after = 0: no pass;
#   yield  the pass as shipped: it waits while this gateway accepts more than pause_above (50)
#          purchases a second;
#   busy   pause_above = 0: the pass runs straight through the flash (the cost it avoids).
# The flash is bench-open (every purchase accepted) with USERS buyers; the figure is the flash
# report's accepted purchases a second. Usage: bench/archive-during-flash.sh [orders] [users] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-1000000}
users=${2:-100000}
rounds=${3:-3}
out=docs/bench/archive
mkdir -p "$out"
cargo build --release -q -p flashgate -p flashgate-bench
bench=target/release/flashgate-bench
# The pass says when it waits for the sale and when it resumes.
export FLASHGATE_REHEARSE_LOG=warn,flashgate::archive=info
seed=$(mktemp -d)
trap 'rm -rf "$seed"' EXIT
"$bench" archive --seed-only --path "$seed/orders.db" --orders "$orders" --live-orders 0
for mode in off yield busy; do
  cp bench/bench.toml "$seed/$mode.toml"
  case $mode in
    off) printf '\n[archive]\nafter = "0"\n' ;;
    yield) printf '\n[archive]\nafter = "1d"\ninterval = "1h"\n' ;;
    busy) printf '\n[archive]\nafter = "1d"\ninterval = "1h"\npause_above = 0\n' ;;
  esac >>"$seed/$mode.toml"
done
rate() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['accepted_per_s_while_stock']))" "$1"; }
archived() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select ' + '+'.join(f'(select count(*) from orders_{i:02})' for i in range(16))).fetchone()[0])" "$1"; }
echo "| round | off /s | yield /s | busy /s | yield/off | busy/off | yield: moved, waits | busy: moved |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  declare -A r m w
  for mode in off yield busy; do
    work="$seed/work-$mode"
    rm -rf "$work" && mkdir -p "$work"
    cp "$seed"/orders*.db* "$work"/
    "$bench" rehearse --workdir "$work" --config "$seed/$mode.toml" flash --campaign bench-open \
      --users "$users" --connections 64 --json "$out/flash-$mode-$round.json" >"$out/flash-$mode-$round.txt" 2>&1
    r[$mode]=$(rate "$out/flash-$mode-$round.json")
    m[$mode]=$(archived "$work/orders-archive.db")
    w[$mode]=$(grep -c "archive pass waits" "$work/gateway.log" || true)
    cp "$work/gateway.log" "$out/gateway-$mode-$round.log"
  done
  printf "| %d | %s | %s | %s | %.2f | %.2f | %s, %s | %s |\n" "$round" "${r[off]}" "${r[yield]}" "${r[busy]}" \
    "$(echo "${r[yield]} / ${r[off]}" | bc -l)" "$(echo "${r[busy]} / ${r[off]}" | bc -l)" \
    "${m[yield]}" "${w[yield]}" "${m[busy]}"
done
