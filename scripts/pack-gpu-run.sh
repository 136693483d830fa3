#!/usr/bin/env bash
# Packs what a GPU run needs into two folders that each fit one device-tool call (64 MiB):
#   gpu-carry-a/  the first 48 MiB of the model weights and the benchmark data
#                 (data/senteval, data/retrieval): ~57 MiB
#   gpu-carry-b/  the rest of the weights, the model's other files, the CUDA binary (gzip),
#                 env.sh and gpu-run.sh: ~54 MiB
# The f32 weights (all-MiniLM-L6-v2: 91 MB) are over the limit on their own, so the GPU
# machine gets them in two calls and joins them (scripts/run-on-gpu.md).
#
# Usage: scripts/pack-gpu-run.sh   (after scripts/build-cuda.sh)
# Env:   ISOVEC_MODEL  model folder (default ~/.cache/isovec/models/all-MiniLM-L6-v2)
#        ISOVEC_DATA   benchmark data (default ../shared/data)
#        CUDA_CARRY    the build script's output (default gpu-carry/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODEL="${ISOVEC_MODEL:-$HOME/.cache/isovec/models/all-MiniLM-L6-v2}"
DATA="${ISOVEC_DATA:-$ROOT/../shared/data}"
CARRY="${CUDA_CARRY:-$ROOT/gpu-carry}"
[ -x "$CARRY/isovec" ] || { echo "no $CARRY/isovec: run scripts/build-cuda.sh first" >&2; exit 1; }
[ -f "$MODEL/model.safetensors" ] || { echo "no model at $MODEL: run \`isovec model fetch\`" >&2; exit 1; }
[ -d "$DATA/senteval" ] || { echo "no benchmark data at $DATA (set ISOVEC_DATA)" >&2; exit 1; }

rm -rf gpu-carry-a gpu-carry-b
mkdir -p gpu-carry-a/data gpu-carry-b/model
split -b 48m -d "$MODEL/model.safetensors" model.safetensors.part-
mv model.safetensors.part-00 gpu-carry-a/
mv model.safetensors.part-* gpu-carry-b/
(cd "$MODEL" && sha256sum model.safetensors) > gpu-carry-b/model.sha256
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  [ -f "$MODEL/$f" ] && cp "$MODEL/$f" gpu-carry-b/model/
done
gzip -9 -c "$CARRY/isovec" > gpu-carry-b/isovec.gz
cp "$CARRY/env.sh" gpu-carry-b/env.sh
[ -d "$CARRY/lib" ] && cp -r "$CARRY/lib" gpu-carry-b/lib
cp -r "$DATA/senteval" "$DATA/retrieval" gpu-carry-a/data/
cp scripts/gpu-run.sh gpu-carry-b/gpu-run.sh
du -sh gpu-carry-a gpu-carry-b
for d in gpu-carry-a gpu-carry-b; do
  size=$(du -sm "$d" | cut -f1)
  [ "$size" -lt 62 ] || echo "warning: $d is ${size} MiB: over what one device call carries" >&2
done
