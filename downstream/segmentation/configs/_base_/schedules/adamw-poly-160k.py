# iBOT's ADE20K schedule (docs/methods.md 9.4): AdamW (0.9, 0.999), wd 0.05, layer decay 0.65 (num_layers = depth + 2,
# counted from the model), 1500 linear warm-up iterations from 1e-6 x lr, then poly (power 1) to 0 at 160k.
# lr 8e-5 is the iBOT README's ViT-B command (its config says 7e-4, Q-I2). AMP through the optim wrapper: mmseg's
# `fp16 = dict(...)` key is ignored by the MMEngine Runner.
max_iters = 160000
warmup_iters = 1500
optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=8e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='detailclip.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65, encoder_prefix='backbone.'))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
