# FLIP-style CLIP ViT-B/16 on YFCC15M (methods.md 3): 50 % random token removal, otherwise the CLIP recipe.
_base_ = [
    '../_base_/models/flip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_csv.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
