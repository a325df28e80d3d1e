# Mask R-CNN (256-channel FPN) on an exported ViT-B/16, COCO 1x with iBOT's optimisation and DETR-style augmentation
# (docs/methods.md 9.4), 8 GPUs x 2 images, AMP.
#   tools/benchmarks/det.sh CKPT|random downstream/detection/configs/<this file>
_base_ = [
    './_base_/models/mask-rcnn_vit-base-p16_fpn.py',
    './_base_/datasets/coco_instance_ms-crop.py',
    './_base_/schedules/adamw-layer-decay-1x.py',
    './_base_/default_runtime.py',
]
