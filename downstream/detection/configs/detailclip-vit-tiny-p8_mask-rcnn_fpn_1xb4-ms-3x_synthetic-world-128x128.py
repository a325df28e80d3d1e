# The Mask R-CNN 3x recipe on the tiny pretraining encoder and the synthetic world's COCO split (CPU minutes):
# 75 iterations per epoch, 2700 in all, 100 of them warm-up; fp32 (MMEngine's AMP wrapper needs a GPU).
#   tools/benchmarks/det.sh CKPT|random downstream/detection/configs/<this file>
_base_ = [
    './_base_/models/mask-rcnn_vit-base-p16_fpn.py',
    './_base_/models/vit-tiny-p8_synthetic-world.py',
    './_base_/datasets/synthetic-world_coco-128x128.py',
    './_base_/schedules/adamw-layer-decay-3x.py',
    './_base_/default_runtime.py',
]
model = _base_.tiny_mask_rcnn
optim_wrapper = _base_.tiny_optim_wrapper
param_scheduler = [dict(_base_.param_scheduler[0], end=_base_.tiny_warmup_iters), _base_.param_scheduler[1]]
