# Tiny CLIP on the synthetic world: the README's main command (trains on a 2-core CPU in minutes).
_base_ = [
    '../_base_/models/clip_vit-tiny-p8.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
