# MaskCLIP-style ViT-B/16 on YFCC15M (methods.md 5; settings [unverified], see the model base): CLIP recipe + masked
# self-distillation from the EMA teacher.
_base_ = [
    '../_base_/models/maskclip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_csv.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(dataset=dict(pipeline=_base_.same_view_twice_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
default_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.996), teacher_temp=dict(type='TeacherTempHook'))
