#!/usr/bin/env bash
# Every training-step measurement of docs/performance_figures.md, printed as Markdown tables to paste there.
#   tools/benchmarks/perf.sh [OUT_DIR] [benchmark.py flags for every run, e.g. --steps 2 --warmup 1]
# Defaults: work_dirs/perf, 5 timed steps after 2 warm-up steps. Settings: BATCH (8; the scaling runs take half and
# twice it), PRECISIONS ("fp32 bf16"), COMPILE=1 (also DetailCLIP with its blocks compiled), OTHERS=1 (also CLIP
# and the batch-size and image-size runs; empty: only DetailCLIP's naive and optimized step), DETAILCLIP and CLIP
# (the configs), PY. Each measurement runs in its own process
# (tools/analysis/benchmark.py: peak RSS never falls within a process) and is saved as OUT_DIR/<name>.json; a rerun
# reuses saved measurements, so delete OUT_DIR (or a file in it) to measure again. Run it on an otherwise idle
# machine: the timings are wall clock.
set -euo pipefail
OUT=${1:-work_dirs/perf}
shift || true
EXTRA=("$@")
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PY=${PY:-.venv/bin/python}
B=${BATCH:-8}
PRECISIONS=${PRECISIONS:-fp32 bf16}
DETAILCLIP=${DETAILCLIP:-configs/detailclip/detailclip_vit-base-p16_16xb256-amp-coslr-50e_yfcc15m.py}
CLIP=${CLIP:-configs/clip/clip_vit-base-p16_8xb512-amp-coslr-25e_yfcc15m.py}
mkdir -p "$OUT"

# measure NAME CONFIG [FLAGS...]: one benchmark run, saved as OUT/NAME.json (its log beside it)
measure() {
    local name=$1 config=$2
    shift 2
    [[ -f "$OUT/$name.json" ]] && return
    echo "== $name" >&2
    $PY tools/analysis/benchmark.py "$config" "$@" "${EXTRA[@]}" --label "$name" --json "$OUT/$name.json" \
        > "$OUT/$name.log" 2>&1 || { echo "$name failed: see $OUT/$name.log" >&2; exit 1; }
}

# table TITLE NAME...: saved measurements as one Markdown table, ratios against the first
table() {
    local title=$1 files=() name
    shift
    for name in "$@"; do files+=("$OUT/$name.json"); done
    printf '### %s\n\n' "$title"
    $PY tools/analysis/benchmark.py --report "${files[@]}"
}

for precision in $PRECISIONS; do
    amp=()
    [[ $precision == bf16 ]] && amp=(--amp)
    measure "detailclip-naive-$precision-b$B" $DETAILCLIP --naive --batch $B "${amp[@]}"
    measure "detailclip-$precision-b$B" $DETAILCLIP --batch $B "${amp[@]}"
    if [[ -n ${OTHERS-1} ]]; then
        measure "clip-$precision-b$B" $CLIP --batch $B "${amp[@]}"
        measure "detailclip-$precision-b$((B / 2))" $DETAILCLIP --batch $((B / 2)) "${amp[@]}"
        measure "detailclip-$precision-b$((B * 2))" $DETAILCLIP --batch $((B * 2)) "${amp[@]}"
        measure "detailclip-$precision-b$B-s160" $DETAILCLIP --batch $B --img-size 160 "${amp[@]}"
    fi
    if [[ -n ${COMPILE:-} ]]; then
        measure "detailclip-$precision-b$B-compile" $DETAILCLIP --batch $B --compile "${amp[@]}"
    fi
done

echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB" \
     "memory; $($PY -c 'import torch; print("torch", torch.__version__)')"
echo
for precision in $PRECISIONS; do
    table "DetailCLIP ViT-B/16, batch $B, $precision: naive vs optimized" \
        "detailclip-naive-$precision-b$B" "detailclip-$precision-b$B"
    if [[ -n ${OTHERS-1} ]]; then
        table "DetailCLIP over CLIP, ViT-B/16, batch $B, $precision" "clip-$precision-b$B" "detailclip-$precision-b$B"
        table "DetailCLIP against batch size, $precision, 224 px" \
            "detailclip-$precision-b$((B / 2))" "detailclip-$precision-b$B" "detailclip-$precision-b$((B * 2))"
        table "DetailCLIP against image size, $precision, batch $B" "detailclip-$precision-b$B-s160" \
            "detailclip-$precision-b$B"
    fi
    if [[ -n ${COMPILE:-} ]]; then
        table "DetailCLIP compiled, batch $B, $precision" "detailclip-$precision-b$B" "detailclip-$precision-b$B-compile"
    fi
done
