# MAE pretraining (docs/methods.md 8.1): AdamW (0.9, 0.95), lr 1.5e-4 x 4096 / 256, wd 0.05 (clean groups: no decay on
# norms, biases, tokens, positional embeddings), 40 warm-up epochs then cosine to 0, 800 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='CLIPOptimWrapperConstructor',
    paramwise_cfg=dict(wd_rule='clean'),
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05),
)
param_scheduler = [dict(type='WarmupCosineLR', warmup_epochs=40, start_lr=0.0, end_lr=0.0, by_epoch=True,
                        convert_to_iter_based=True)]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_epochs=800, val_interval=10**9)
