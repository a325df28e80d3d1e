#!/usr/bin/env bash
# The GPU figures of docs/performance_figures.md in one command on a lent GPU machine (the tool library's `device`):
#   here:   bash tools/benchmarks/gpu_wheels.sh     # .whl/: what that machine's Python lacks (MMEngine, timm, ...)
#   there:  bash tools/benchmarks/gpu.sh            # carrying .whl
# tools/benchmarks/perf.sh with bf16 autocast at batch 64 (the scaling runs at 32 and 128), the compiled blocks too,
# 10 timed steps after 3 warm-up steps and the op split. $OUT gets two files, as few as the device tool brings back:
# tables.md and runs.tar.gz (each run's JSON record and log, measured in $RUNS). Settings as perf.sh's (BATCH,
# PRECISIONS, COMPILE, OTHERS, DETAILCLIP, CLIP, PY), plus DEVICE (cuda), STEPS, WARMUP, WHEELS (.whl) and RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-work_dirs/gpu}
export PY=${PY:-python3} BATCH=${BATCH:-64} PRECISIONS=${PRECISIONS:-bf16} COMPILE=${COMPILE-1}
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
WHEELS=${WHEELS:-.whl}
if [[ -d $WHEELS ]]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
RUNS=${RUNS:-/tmp/detailclip_gpu_runs}
mkdir -p "$OUT" "$RUNS"
tools/benchmarks/perf.sh "$RUNS" --device "${DEVICE:-cuda}" --steps "${STEPS:-10}" --warmup "${WARMUP:-3}" --ops \
    | tee "$OUT/tables.md"
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" .
