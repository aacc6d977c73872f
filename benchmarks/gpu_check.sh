#!/usr/bin/env bash
# One GPU check, ready to fire wherever a GPU is at hand (about 8 minutes on one GPU):
#   1. the CUDA tests (tests/engine/test_cuda.py, the per-step sync test)
#   2. benchmarks/run_all.py --quick --device cuda
#   3. the default recipe (casia2modma, every row) on --device cuda: its wall time
#   4. K=5 seeds vmapped vs sequential (bench_seeds.py)
#   5. 4 units packed on one GPU as Ray tasks vs one after another (bench_executor.py)
#   6. bf16 autocast on vs off: casia2modma --quick's wall time with train.amp true / false
# and appends every figure, with the device's name and the commands, to benchmarks/RESULTS.md.
#
#   benchmarks/gpu_check.sh                          # on the GPU
#   benchmarks/gpu_check.sh --device cpu --dry-run  # tiny sizes, to know it runs (CI)
#
# --dry-run: every step at a tiny size, the figures into a temporary copy of RESULTS.md
# (printed at the end), never into the real one; the Ray step only imports ray there (a Ray
# instance alone takes a minute). --results FILE writes elsewhere.
set -euo pipefail

DEVICE=cuda
DRY=0
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
RESULTS="$HERE/RESULTS.md"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --results) RESULTS="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown option $1 (expected --device cuda|cpu, --dry-run, --results FILE)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if [ "$DRY" = 1 ]; then
  cp "$RESULTS" "$TMP/RESULTS.md"
  RESULTS="$TMP/RESULTS.md"
fi
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DEVICE" = cuda ]; then
  NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
else
  NAME="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') ($(getconf _NPROCESSORS_ONLN) cores)"
fi
LOG="$TMP/figures.md"
{
  echo
  echo "## GPU check: $NAME ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([ "$DRY" = 1 ] && echo ', DRY RUN: tiny sizes, not figures'))"
  echo
  echo "\`benchmarks/gpu_check.sh --device $DEVICE$([ "$DRY" = 1 ] && echo ' --dry-run')\`; every line: the step, its command, its figures."
  echo
} > "$LOG"

# step NAME COMMAND...: runs it, prints its output, and records its wall time and ratio lines
step() {
  local name="$1"; shift
  echo "== $name: $*"
  local start end out="$TMP/step.out"
  start=$(date +%s.%N)
  "$@" 2>&1 | tee "$out"
  end=$(date +%s.%N)
  local figures
  figures="$( (grep -E '^[a-z_]+ ratio=|_s=|passed|failed|skipped|methods in [0-9]+ s' "$out" || true) | tail -8 | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
  printf -- "- %s: \`%s\`: wall %s s%s\n" "$name" "$*" "$(awk "BEGIN { printf \"%.1f\", $end - $start }")" "${figures:+; $figures}" >> "$LOG"
}

CUDA_TESTS=(tests/engine/test_cuda.py tests/engine/test_host_sync.py::test_a_cuda_epoch_never_waits_for_the_device_before_its_end)
if [ "$DRY" = 1 ]; then
  SMALL=(--quick --methods target_only --set train.epochs=1 --set train.pretrain_epochs=1 --folds 2 --seeds 1)
  step "CUDA tests" "$PY" -m pytest -q -p no:cacheprovider "${CUDA_TESTS[@]}"
  step "run_all" "$PY" benchmarks/run_all.py --quick --device "$DEVICE" --only training_step
  step "default recipe" "$PY" -m domadapt.recipe casia2modma --device "$DEVICE" --quiet "${SMALL[@]}" --out "$TMP/default"
  step "seeds vmapped vs sequential" "$PY" benchmarks/bench_seeds.py --quick --device "$DEVICE" --seeds 2 --filters 8 --levels 2 --batch 16
  step "ray import (packing skipped in a dry run)" "$PY" -c "import ray; print('ray', ray.__version__)"
  step "bf16 autocast on" "$PY" -m domadapt.recipe casia2modma --device "$DEVICE" --quiet "${SMALL[@]}" --set train.amp=true --out "$TMP/amp-on"
  step "bf16 autocast off" "$PY" -m domadapt.recipe casia2modma --device "$DEVICE" --quiet "${SMALL[@]}" --set train.amp=false --out "$TMP/amp-off"
else
  step "CUDA tests" "$PY" -m pytest -q -p no:cacheprovider "${CUDA_TESTS[@]}"
  step "run_all" "$PY" benchmarks/run_all.py --quick --device "$DEVICE"
  step "default recipe" "$PY" -m domadapt.recipe casia2modma --device "$DEVICE" --quiet --out "$TMP/default"
  step "seeds vmapped vs sequential" "$PY" benchmarks/bench_seeds.py --device "$DEVICE"
  step "4 units packed (ray) vs one after another" "$PY" benchmarks/bench_executor.py --quick --device "$DEVICE"
  step "bf16 autocast on" "$PY" -m domadapt.recipe casia2modma --quick --device "$DEVICE" --quiet --set train.amp=true --out "$TMP/amp-on"
  step "bf16 autocast off" "$PY" -m domadapt.recipe casia2modma --quick --device "$DEVICE" --quiet --set train.amp=false --out "$TMP/amp-off"
fi

cat "$LOG" >> "$RESULTS"
echo
echo "== appended to $RESULTS:"
cat "$LOG"
