# Mask R-CNN (256-channel FPN) on an exported ViT-B/16, COCO 3x with iBOT's optimisation and DETR-style augmentation
# (docs/methods.md 9.4), 8 GPUs x 2 images, AMP.
_base_ = [
    './_base_/models/mask-rcnn_vit-base-p16_fpn.py',
    './_base_/datasets/coco_instance_ms-crop.py',
    './_base_/schedules/adamw-layer-decay-3x.py',
    './_base_/default_runtime.py',
]
