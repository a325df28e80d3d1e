#!/usr/bin/env bash
# Train every method's tiny synthetic-world config through tools/train.py at one budget, then print a table of
# seconds per iteration, first/last loss and the quality figures at initialisation and after training
# (zero-shot top-1 for text methods, kNN top-1 on the single-object split for all).
#   tools/benchmarks/tiny_methods.sh [EPOCHS|config] [OUT_DIR] [METHOD ...]
# Defaults: each config's own epochs, work_dirs/tiny_methods, all 11 methods. A number sets every method's epochs
# (DeiT gets 12x: 480 labelled images vs 6000 captioned ones, so the same iterations).
set -euo pipefail
EPOCHS=${1:-config}
OUT=${2:-work_dirs/tiny_methods}
shift $(( $# > 2 ? 2 : $# ))
METHODS=("$@")
(( ${#METHODS[@]} )) || METHODS=(clip flip slip maskclip aclip detailclip mae dino ibot attmask deit)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY=.venv/bin/python
mkdir -p "$OUT"
runs=()
for name in "${METHODS[@]}"; do
    cfg=$(ls configs/"$name"/*vit-tiny*synthetic-world.py)
    overrides=()
    if [[ $EPOCHS != config ]]; then
        epochs=$EPOCHS
        [[ $name == deit ]] && epochs=$(( EPOCHS * 12 ))
        overrides=(--cfg-options train_cfg.max_epochs="$epochs")
    fi
    echo "== $name ($cfg ${overrides[*]})"
    $PY tools/train.py "$cfg" --work-dir "$OUT/$name" "${overrides[@]}" \
        > "$OUT/$name.log" 2>&1 || { echo "$name failed: see $OUT/$name.log"; exit 1; }
    runs+=("$OUT/$name")
done
$PY tools/analysis/summarize_runs.py "${runs[@]}" | tee "$OUT/summary.md"
