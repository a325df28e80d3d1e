# SLIP ViT-B/16 on YFCC15M (docs/methods.md 4): batch 4096, lr 3e-3, wd 0.1, 25 epochs, fp16 AMP; SLIP's metadata,
# the caption drawn from title and description per sample (Q-D14); timm 0.5's cls_token init (SLIP pins 0.5.0).
_base_ = [
    '../_base_/models/slip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_slip.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=dict(cls_token_init_std=0.02))
train_dataloader = dict(dataset=dict(pipeline=_base_.slip_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=3e-3, weight_decay=0.1))
train_cfg = dict(max_epochs=25)
