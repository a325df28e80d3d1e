# AdamW (0.9, 0.98), eps 1e-8, reference parameter groups; per iteration a linear warm-up from 1e-6 over one epoch,
# then cosine to 1e-5 (docs/methods.md 1.6). Leaves change `optimizer.lr`, `optimizer.weight_decay` and `max_epochs`.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='CLIPOptimWrapperConstructor',
    paramwise_cfg=dict(wd_rule='reference'),
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.5),
)
param_scheduler = [dict(type='WarmupCosineLR', warmup_epochs=1, start_lr=1e-6, end_lr=1e-5, by_epoch=True,
                        convert_to_iter_based=True)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_epochs=25, val_interval=10**9)
