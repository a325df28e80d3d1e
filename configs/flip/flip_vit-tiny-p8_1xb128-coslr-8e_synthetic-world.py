# Tiny FLIP-style CLIP on the synthetic world (50 % random token removal).
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(_base_.tiny_towers, masker=dict(type='RandomMask', ratio=0.5))
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=_base_.train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
