# ADE20K linear probe of a frozen exported ViT-B/16 (docs/methods.md 9.4), 4 GPUs x 4 images, 160k iterations, AMP,
# lr 8e-4 (iBOT README). Only the 1x1 classifier trains, so there is no layer decay.
_base_ = [
    './_base_/models/linear_vit-base-p16.py',
    'mmseg::_base_/datasets/ade20k.py',
    './_base_/schedules/adamw-poly-160k.py',
    './_base_/default_runtime.py',
]
optim_wrapper = dict(optimizer=dict(lr=8e-4), paramwise_cfg=dict(layer_decay_rate=1.0))
train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
