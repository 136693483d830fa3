#!/usr/bin/env bash
# Runs on the GPU machine, from the folder packed by scripts/pack-gpu-run.sh (gpu-carry-b/),
# after an earlier call copied gpu-carry-a/ (first part of the weights, data/) to /tmp/isovec/.
# Writes every table to $OUT (or ./gpu-results) and prints them.
#
# Usage: bash gpu-carry-b/gpu-run.sh [check|sts|bench|all]   (default all)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK=/tmp/isovec
RESULTS="${OUT:-$HERE/../gpu-results}"
mkdir -p "$WORK/model" "$RESULTS"
what="${1:-all}"

# Assemble the binary and the model (once per machine).
if [ ! -x "$WORK/isovec" ]; then
  gunzip -c "$HERE/isovec.gz" > "$WORK/isovec"
  chmod +x "$WORK/isovec"
fi
if [ ! -f "$WORK/model/model.safetensors" ]; then
  [ -f "$WORK/model.safetensors.part-00" ] || { echo "first part of the weights missing in $WORK: run the first call" >&2; exit 1; }
  cat "$WORK/model.safetensors.part-00" "$HERE"/model.safetensors.part-* > "$WORK/model/model.safetensors"
  cp "$HERE"/model/* "$WORK/model/"
  (cd "$WORK/model" && sha256sum -c "$HERE/model.sha256")
fi
# shellcheck source=/dev/null
source "$HERE/env.sh"
[ -d "$WORK/data/senteval" ] || { echo "benchmark data missing in $WORK/data: run the first call" >&2; exit 1; }
export ISOVEC_MODEL="$WORK/model" ISOVEC_DATA="$WORK/data"
ISOVEC="$WORK/isovec"

nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv | tee "$RESULTS/gpu.txt"
ldd "$ISOVEC" | grep -E 'cuda|cublas|curand|nvrtc' | tee -a "$RESULTS/gpu.txt"

run() { # name, then the command; output to $RESULTS/name.md
  local name="$1"; shift
  echo "== $name: $*"
  /usr/bin/time -v "$@" > "$RESULTS/$name.md" 2> "$RESULTS/$name.log" || { tail -20 "$RESULTS/$name.log"; return 1; }
  cat "$RESULTS/$name.md"
  grep -E 'Elapsed|Maximum resident' "$RESULTS/$name.log" || true
}

if [ "$what" = check ] || [ "$what" = all ]; then
  # Smoke test: every precision gives a vector, and `auto` picks the GPU (the bench footer
  # names the device it ran on).
  for dtype in f32 f16 bf16; do
    "$ISOVEC" embed --device cuda --dtype "$dtype" "A man is playing a guitar." | head -c 200; echo
  done
  "$ISOVEC" bench encode --device auto --batch-sizes 64 --runs 1 --docs 100 | tail -n 1
fi
if [ "$what" = sts ] || [ "$what" = all ]; then
  # The STS table (Spearman x100) on the GPU in each precision and, for reference, on the CPU.
  for dtype in f32 f16 bf16; do
    run "sts-cuda-$dtype" "$ISOVEC" eval sts --device cuda --dtype "$dtype" --batch-size 128 \
      --pooling mean,cls_before_pooler,first_last_avg --transform whiten --transform flow
  done
  run sts-cpu-f32 "$ISOVEC" eval sts --device cpu --pooling mean,cls_before_pooler,first_last_avg \
    --transform whiten --transform flow
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for dtype in f32 f16 bf16; do
    run "bench-encode-cuda-$dtype" "$ISOVEC" bench encode --device cuda --dtype "$dtype" \
      --batch-sizes 32,128,512 --runs 5
  done
  run bench-encode-cpu-f32 "$ISOVEC" bench encode --device cpu --batch-sizes 32,128 --runs 3
fi
