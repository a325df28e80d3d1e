# DeiT-style supervised ViT-B/16: AdamW, lr 5e-4 x 1024 / 512, wd 0.05, 5 warm-up epochs then cosine, 300 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='CLIPOptimWrapperConstructor',
    paramwise_cfg=dict(wd_rule='clean'),
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, betas=(0.9, 0.999), weight_decay=0.05),
)
param_scheduler = [dict(type='WarmupCosineLR', warmup_epochs=5, start_lr=1e-6, end_lr=1e-5, by_epoch=True,
                        convert_to_iter_based=True)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_epochs=300, val_interval=10**9)
