#!/usr/bin/env bash
# Where the time goes: perf profiles of the gateway (accepted purchases, sold-out rejections)
# and of Redis (accepted purchases), each sampled for 8 s in the middle of a `compare` run on a
# private Redis and gateway, drawn as flame graphs (inferno). Needs perf (Debian linux-perf) and
# inferno (cargo install inferno). Beside each SVG, bench/flame-summary.py's reading of it (.txt).
# Usage: bench/profile.sh [out_dir] [connections]   (default docs/bench/profile, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/bench/profile}
conns=${2:-64}
mkdir -p "$out"
cargo build --release -q -p flashgate -p flashgate-bench
bench=target/release/flashgate-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

profile() { # name campaign process
  local name=$1 campaign=$2 process=$3
  "$bench" rehearse --config bench/bench.toml compare --campaign "$campaign" \
    --connections "$conns" --duration 14s --rounds 1 --no-naive >"$work/$name.compare" 2>&1 &
  local run=$!
  local pid=""
  for _ in $(seq 100); do
    # The rehearsal's own gateway / Redis: the newest process of that name.
    pid=$(pgrep -n -x "$process" || true)
    [ -n "$pid" ] && grep -q "^compare:" "$work/$name.compare" && break
    sleep 0.1
  done
  sleep 3
  perf record -q -F 499 --call-graph dwarf,65528 -p "$pid" -o "$work/$name.data" -- sleep 8 \
    >/dev/null 2>&1
  wait "$run"
  perf script -i "$work/$name.data" 2>/dev/null | inferno-collapse-perf >"$work/$name.folded"
  # Frames under 0.2% of the samples are left out: the SVG stays small enough to commit.
  inferno-flamegraph --minwidth 0.2 --title "$name ($conns connections)" \
    <"$work/$name.folded" >"$out/$name.svg"
  python3 bench/flame-summary.py "$work/$name.folded" >"$out/$name.txt"
  grep -E '^\| 1 \| gateway|by thread' "$work/$name.compare" || true
  echo "$out/$name.svg"
}

profile gateway-accepted bench-open flashgate
profile gateway-soldout bench-soldout flashgate
profile redis-accepted bench-open redis-server
