# Tiny supervised ViT on the synthetic world's single-object training split (8 shape classes).
_base_ = [
    '../_base_/models/deit_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=_base_.tiny_image_encoder,
             objectives=dict(cls=dict(in_dim=_base_.tiny_width, num_classes=8)))
train_dataloader = dict(batch_size=64, dataset=dict(
    _delete_=True, type='ImageFolderClassification', data_root=_base_.data_root, split='classification/train',
    zero_shot_file='zero_shot.json', auto_generate=_base_.world, pipeline=_base_.supervised_pipeline))
val_dataloader = test_dataloader = _base_.image_only_val_dataloader
val_evaluator = test_evaluator = _base_.image_only_val_evaluator
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.05))
train_cfg = dict(max_epochs=50, val_at_start=True)
