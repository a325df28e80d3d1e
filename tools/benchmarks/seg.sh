#!/usr/bin/env bash
# ADE20K-style semantic segmentation (mmsegmentation) of a pretrained image encoder, via tools/downstream.py: export
# the encoder of CKPT (a training checkpoint or an export; "random" for no pretraining), train CONFIG, test (mIoU),
# draw predictions of a few test images into WORK_DIR/vis/ and write WORK_DIR/metrics.json.
#   tools/benchmarks/seg.sh CKPT|random CONFIG [WORK_DIR] [--teacher] [--cfg-options k=v ...]
# WORK_DIR defaults to work_dirs/seg/<config name>/<checkpoint folder>_<checkpoint name> (or .../random).
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n 2,6p "$0"
    exit 1
fi
source "$(dirname "$0")/downstream_args.sh"
run_downstream "$@"
