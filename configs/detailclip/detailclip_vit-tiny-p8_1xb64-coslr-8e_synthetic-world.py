# Tiny DetailCLIP on the synthetic world: attention masking from the EMA teacher, CLIP on both views,
# pixel reconstruction and iBOT patch/CLS self-distillation.
_base_ = [
    '../_base_/models/detailclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(_base_.tiny_towers, objectives=dict(mae=dict(patch_size=8, decoder=_base_.tiny_decoder),
                                                 ibot=dict(head=_base_.tiny_distillation_head)))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.two_view_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=_base_.tiny_ema_hook, teacher_temp=dict(type='TeacherTempHook'))
