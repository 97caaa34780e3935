#!/usr/bin/env bash
# The purchase path before and after a change, in one run on this machine: `compare` (gateway vs
# the reference servers it starts itself: hello, and the naive gateway where the build has it)
# on bench-open and bench-soldout, for the build of BASE
# and for this checkout, in ABBA order (base, this, this, base) so drift over the run cancels.
# Each side runs from its own tree, with its own bench/bench.toml.
# Usage: bench/before-after.sh BASE_REV [out_dir]   (e.g. bench/before-after.sh ab7fdb4)
# CAMPAIGNS="bench-open" limits the run to some campaigns.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/before-after.sh BASE_REV [out_dir]}
out=${2:-docs/bench/before-after}
here=$(pwd)
mkdir -p "$out"
# BASE_TREE: an existing checkout of BASE to reuse (with BASE_TARGET, its build).
if [ -n "${BASE_TREE:-}" ]; then
  tree=$BASE_TREE
else
  tree=$(mktemp -d)/base
  git worktree add -q --detach "$tree" "$base"
  cleanup() { git -C "$here" worktree remove --force "$tree" 2>/dev/null || true; }
  trap cleanup EXIT
fi
base_target=${BASE_TARGET:-$here/target/before-after-base}
(cd "$tree" && CARGO_TARGET_DIR="$base_target" cargo build --release -q -p flashgate -p flashgate-bench)
cargo build --release -q -p flashgate -p flashgate-bench

run() { # side dir bench campaign round
  local side=$1 dir=$2 bench=$3 campaign=$4 round=$5
  (cd "$dir" && "$bench" rehearse --config bench/bench.toml compare --campaign "$campaign" \
    --connections 64 --duration 8s --rounds 3 --json "$here/$out/$campaign-$side-$round.json" \
    >/dev/null 2>&1)
  python3 - "$here/$out/$campaign-$side-$round.json" "$side" "$campaign" <<'PY'
import json, statistics, sys
report = json.load(open(sys.argv[1]))
rounds = report.get("rounds") or []
def column(key):
    values = [r[key] for r in rounds if r.get(key) is not None] or [report.get(key)]
    values = [v for v in values if v is not None]
    if not values:
        return "—", "—"
    return f"{statistics.median(values):.3f}", ", ".join(f"{x:.3f}" for x in values)
hello, naive = column("ratio"), column("ratio_naive")
print(f"| {sys.argv[3]} | {sys.argv[2]} | {hello[0]} | {hello[1]} | {naive[0]} | {naive[1]} |")
PY
}
echo "| campaign | build | vs hello (median of 3) | rounds | vs naive (median of 3) | rounds |"
echo "|---|---|---|---|---|---|"
for campaign in ${CAMPAIGNS:-bench-open bench-soldout}; do
  run before "$tree" "$base_target/release/flashgate-bench" "$campaign" 1
  run after "$here" "$here/target/release/flashgate-bench" "$campaign" 1
  run after "$here" "$here/target/release/flashgate-bench" "$campaign" 2
  run before "$tree" "$base_target/release/flashgate-bench" "$campaign" 2
done
