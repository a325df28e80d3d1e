# Tiny MAE on the synthetic world's pretraining images (captions unused).
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=_base_.tiny_image_encoder,
             objectives=dict(mae=dict(patch_size=8, decoder=dict(_base_.tiny_decoder, depth=2))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.mae_pipeline))
val_dataloader = test_dataloader = _base_.image_only_val_dataloader
val_evaluator = test_evaluator = _base_.image_only_val_evaluator
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.05))
train_cfg = dict(max_epochs=8, val_at_start=True)
