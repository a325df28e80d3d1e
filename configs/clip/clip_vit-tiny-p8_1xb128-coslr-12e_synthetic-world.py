# Tiny CLIP on the synthetic world: the README's main command (trains on a 2-core CPU in minutes).
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = _base_.tiny_towers
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=12, val_at_start=True)
