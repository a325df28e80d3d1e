# MaskCLIP-style ViT-B/16 on YFCC15M (docs/methods.md 5; settings our own, see the model base): CLIP recipe + masked
# self-distillation from the EMA teacher. Data and init of the CLIP baseline: SLIP's metadata, title or description
# per sample (Q-D14), timm 0.5's cls_token init.
_base_ = [
    '../_base_/models/maskclip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_slip.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=dict(cls_token_init_std=0.02))
train_dataloader = dict(dataset=dict(pipeline=_base_.same_view_twice_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
default_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.996), teacher_temp=dict(type='TeacherTempHook'))
