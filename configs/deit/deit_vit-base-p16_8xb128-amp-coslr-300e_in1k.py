# Supervised ViT-B/16 on ImageNet-1k (the DeiT row of the dense-task table): batch 1024, 300 epochs, fp16 AMP.
_base_ = [
    '../_base_/models/deit_vit-base-p16.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/adamw_deit.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=_base_.supervised_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
