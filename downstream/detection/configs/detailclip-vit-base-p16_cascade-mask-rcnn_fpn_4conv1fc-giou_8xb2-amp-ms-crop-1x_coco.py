# iBOT's COCO protocol as its README runs it (docs/methods.md 9.4): Cascade Mask R-CNN with 4conv1fc + GIoU box heads on
# an exported ViT-B/16, 1x, DETR-style augmentation, 8 GPUs x 2 images, AMP.
_base_ = [
    './_base_/models/cascade-mask-rcnn_vit-base-p16_fpn_4conv1fc-giou.py',
    './_base_/datasets/coco_instance_ms-crop.py',
    './_base_/schedules/adamw-layer-decay-1x.py',
    './_base_/default_runtime.py',
]
