#!/usr/bin/env bash
# COCO-style detection and instance segmentation (mmdetection) of a pretrained image encoder, via tools/downstream.py
# (the entry seg.sh uses): export the encoder of CKPT (a training checkpoint or an export; "random" for no
# pretraining), train CONFIG, test (bbox and segm AP through pycocotools), draw boxes and masks of a few test images
# into WORK_DIR/vis/ and write WORK_DIR/metrics.json.
#   tools/benchmarks/det.sh CKPT|random [CONFIG] [WORK_DIR] [--teacher] [--num-vis N] [--cfg-options k=v ...]
# CONFIG defaults to the tiny synthetic-world Mask R-CNN; WORK_DIR to
# work_dirs/det/<config name>/<checkpoint folder>_<checkpoint name> (or .../random).
set -euo pipefail
if [[ $# -lt 1 ]]; then
    sed -n 2,8p "$0"
    exit 1
fi
source "$(dirname "$0")/downstream_args.sh"
CKPT=$1
shift
CONFIG=$ROOT/downstream/detection/configs/detailclip-vit-tiny-p8_mask-rcnn_fpn_1xb4-ms-1x_synthetic-world-128x128.py
if [[ $# -gt 0 && $1 != -* ]]; then
    CONFIG=$1
    shift
fi
run_downstream "$CKPT" "$CONFIG" "$@"
