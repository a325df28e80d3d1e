# iBOT's Cascade Mask R-CNN 1x recipe on the tiny pretraining encoder and the synthetic world's COCO split (CPU
# minutes): 75 iterations per epoch, 900 in all, 100 of them warm-up; fp32 (MMEngine's AMP wrapper needs a GPU).
#   tools/benchmarks/det.sh CKPT|random downstream/detection/configs/<this file>
_base_ = [
    './_base_/models/cascade-mask-rcnn_vit-base-p16_fpn_4conv1fc-giou.py',
    './_base_/models/vit-tiny-p8_synthetic-world.py',
    './_base_/datasets/synthetic-world_coco-128x128.py',
    './_base_/schedules/adamw-layer-decay-1x.py',
    './_base_/default_runtime.py',
]
bbox_heads = [dict(head, **_base_.tiny_bbox_head) for head in _base_.model.roi_head.bbox_head]
rcnn_stages = [dict(stage, sampler=dict(stage.sampler, **_base_.tiny_rcnn_sampler))
               for stage in _base_.model.train_cfg.rcnn]
model = dict(_base_.tiny_model, roi_head=dict(_base_.tiny_roi_head, bbox_head=bbox_heads),
             train_cfg=dict(rpn_proposal=_base_.tiny_rpn_proposal, rcnn=rcnn_stages))
optim_wrapper = _base_.tiny_optim_wrapper
param_scheduler = [dict(_base_.param_scheduler[0], end=_base_.tiny_warmup_iters), _base_.param_scheduler[1]]
