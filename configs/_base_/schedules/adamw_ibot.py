# DINO / iBOT pretraining (docs/methods.md 8.2): AdamW, lr 5e-4 x 1024 / 256, 10 warm-up epochs then cosine to 1e-6,
# wd 0.04 (the reference's cosine wd ramp to 0.4 is not implemented), gradient clipping at 3.0, 800 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='CLIPOptimWrapperConstructor',
    paramwise_cfg=dict(wd_rule='clean'),
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 256, betas=(0.9, 0.999), weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
)
param_scheduler = [dict(type='WarmupCosineLR', warmup_epochs=10, start_lr=0.0, end_lr=1e-6, by_epoch=True,
                        convert_to_iter_based=True)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_epochs=800, val_interval=10**9)
# The hooks of the schedule (leaves set `default_hooks = _base_.dino_hooks`, or `ibot_hooks`): EMA teacher momentum
# 0.996 -> 1, the head's last layer frozen in epoch 0, teacher temperature 0.04 -> 0.07 over 30 epochs (iBOT: its patch
# temperature too).
teacher_temp_warmup = dict(start=0.04, end=0.07, warmup_epochs=30)
dino_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.996),
                  freeze_last_layer=dict(type='FreezeLastLayerHook', epochs=1),
                  teacher_temp=dict(type='TeacherTempHook', cls=teacher_temp_warmup, patch=None))
ibot_hooks = dict(dino_hooks, teacher_temp=dict(dino_hooks['teacher_temp'], patch=teacher_temp_warmup))
