# Tiny SLIP on the synthetic world: CLIP on view 0 + SimCLR on views 1 and 2.
_base_ = [
    '../_base_/models/slip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(_base_.tiny_towers, objectives=dict(simclr=dict(head=_base_.tiny_mlp_head)))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.slip_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
