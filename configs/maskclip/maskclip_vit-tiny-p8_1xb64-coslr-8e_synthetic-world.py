# Tiny MaskCLIP-style model on the synthetic world (CLIP + masked self-distillation, 75 % removed).
_base_ = [
    '../_base_/models/maskclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(_base_.tiny_towers,
             objectives=dict(msd=dict(decoder=_base_.tiny_decoder, head=_base_.tiny_distillation_head)))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.same_view_twice_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=_base_.tiny_ema_hook, teacher_temp=dict(type='TeacherTempHook'))
