# MAE ViT-B/16 on ImageNet-1k (docs/methods.md 8.1): batch 4096, 800 epochs, fp16 AMP.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/adamw_mae.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
