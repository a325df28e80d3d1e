#!/usr/bin/env bash
# Train every method's tiny synthetic-world config through tools/train.py at one budget, then print a table of
# seconds per iteration, first/last loss and the quality figures at initialisation and after training
# (zero-shot top-1 for text methods, kNN top-1 on the single-object split for all).
#   tools/benchmarks/tiny_methods.sh [EPOCHS] [OUT_DIR]      (defaults: 2 epochs, work_dirs/tiny_methods)
set -euo pipefail
EPOCHS=${1:-2}
OUT=${2:-work_dirs/tiny_methods}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
mkdir -p "$OUT"
runs=()
for cfg in configs/{clip,flip,slip,maskclip,aclip,detailclip,mae,dino,ibot,attmask,deit}/*vit-tiny*synthetic-world.py; do
    name=$(basename "$(dirname "$cfg")")
    epochs=$EPOCHS
    [[ $name == deit ]] && epochs=$(( EPOCHS * 12 ))  # 480 labelled images vs 6000 captioned ones: same iterations
    echo "== $name ($cfg, $epochs epochs)"
    $PY tools/train.py "$cfg" --work-dir "$OUT/$name" --cfg-options train_cfg.max_epochs="$epochs" \
        > "$OUT/$name.log" 2>&1 || { echo "$name failed: see $OUT/$name.log"; exit 1; }
    runs+=("$OUT/$name")
done
$PY tools/analysis/summarize_runs.py "${runs[@]}" | tee "$OUT/summary.md"
