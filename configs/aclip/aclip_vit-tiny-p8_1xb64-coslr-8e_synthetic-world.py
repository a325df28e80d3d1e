# Tiny A-CLIP on the synthetic world (attentive masks from an enclosing teacher crop, SimCLR, BYOL).
_base_ = [
    '../_base_/models/aclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(_base_.tiny_towers, objectives=dict(
    simclr=dict(head=_base_.tiny_mlp_head),
    byol=dict(projector=_base_.tiny_mlp_head, predictor=dict(in_dim=128, hidden_dim=512, out_dim=128))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.aclip_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=_base_.tiny_ema_hook)
