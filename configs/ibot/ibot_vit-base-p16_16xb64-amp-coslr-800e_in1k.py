# iBOT ViT-B/16 on ImageNet-1k (docs/methods.md 8.3): multi-crop, block masking with a mask token, batch 1024,
# 800 epochs, EMA 0.996 -> 1, teacher temperatures 0.04 -> 0.07 over 30 epochs, fp16 AMP.
_base_ = [
    '../_base_/models/ibot_vit-base-p16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/adamw_ibot.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(dataset=dict(pipeline=_base_.multicrop_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
default_hooks = _base_.ibot_hooks
