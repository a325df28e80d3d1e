# FLIP-style CLIP ViT-B/16 on YFCC15M (docs/methods.md 3): 50 % random token removal, otherwise the CLIP recipe (SLIP's
# metadata, title or description per sample (Q-D14), timm 0.5's cls_token init).
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_slip.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=dict(cls_token_init_std=0.02), masker=dict(type='RandomMask', ratio=0.5))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
