#!/usr/bin/env bash
# The paper's two tables in miniature on the synthetic world (docs/results.md): CLIP, SLIP, MaskCLIP, A-CLIP and
# DetailCLIP pretrained at one budget and seed set, then zero-shot and retrieval, the tiny linear probe and the tiny
# Mask R-CNN, plus a random-init floor; writes OUT/results.md (steps: tools/benchmarks/synthetic_table.py).
#   [EPOCHS=4] [BATCH=64] [SEEDS="0 1"] [SEG_ITERS=500] [DET_ITERS=300] [METHODS="clip slip maskclip aclip detailclip"]
#   [OUT=work_dirs/synthetic_table] tools/benchmarks/synthetic_table.sh
# The defaults fit about 1 h 40 min on an idle 2-core CPU. A rerun skips the steps that finished (delete OUT to redo).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
read -r -a seeds <<< "${SEEDS:-0 1}"
read -r -a methods <<< "${METHODS:-clip slip maskclip aclip detailclip}"
exec .venv/bin/python tools/benchmarks/synthetic_table.py --epochs "${EPOCHS:-4}" --batch "${BATCH:-64}" \
    --seeds "${seeds[@]}" --seg-iters "${SEG_ITERS:-500}" --det-iters "${DET_ITERS:-300}" \
    --methods "${methods[@]}" --out "${OUT:-work_dirs/synthetic_table}" "$@"
