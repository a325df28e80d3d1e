#!/usr/bin/env bash
# The paper's tables in miniature on the synthetic world, with 95 % intervals over seeds and the paper's claims
# (docs/benchmark.md; steps: tools/benchmarks/synthetic_table.py). Each suite is resumable: a rerun skips the steps
# that finished. Writes OUT/<suite>/summary.json per suite and REPORT from all of them.
#   [SUITES="methods"] [EPOCHS=4] [BATCH=64] [SEEDS="0 1 2"] [FLOOR_SEEDS=10] [PROBE_IMAGES=2000] [SEG_ITERS=0]
#   [DET_ITERS=0] [OUT=work_dirs/synthetic_table] [REPORT=OUT/results.md] [QUICK=1] tools/benchmarks/synthetic_table.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
args=()
[[ -n "${QUICK:-}" ]] && args+=(--quick)
[[ -n "${EPOCHS:-}" ]] && args+=(--epochs "$EPOCHS")
[[ -n "${SEEDS:-}" ]] && { read -r -a seeds <<< "$SEEDS"; args+=(--seeds "${seeds[@]}"); }
[[ -n "${FLOOR_SEEDS:-}" ]] && args+=(--floor-seeds "$FLOOR_SEEDS")
[[ -n "${PROBE_IMAGES:-}" ]] && args+=(--probe-images "$PROBE_IMAGES")
[[ -n "${SEG_ITERS:-}" ]] && args+=(--seg-iters "$SEG_ITERS")
[[ -n "${DET_ITERS:-}" ]] && args+=(--det-iters "$DET_ITERS")
[[ -n "${OUT:-}" ]] && args+=(--out "$OUT")
[[ -n "${REPORT:-}" ]] && args+=(--report "$REPORT")
read -r -a suites <<< "${SUITES:-methods}"
for suite in "${suites[@]}"; do
    .venv/bin/python tools/benchmarks/synthetic_table.py --suite "$suite" --batch "${BATCH:-64}" "${args[@]}" "$@"
done
