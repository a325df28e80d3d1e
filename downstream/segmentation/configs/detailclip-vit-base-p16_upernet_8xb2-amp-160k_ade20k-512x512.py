# ADE20K UperNet fine-tuning of an exported ViT-B/16 (docs/methods.md 9.4), 8 GPUs x 2 images, 160k iterations, AMP.
#   tools/benchmarks/seg.sh CKPT|random <this config> [WORK_DIR]   (docs/downstream.md)
_base_ = [
    './_base_/models/upernet_vit-base-p16.py',
    'mmseg::_base_/datasets/ade20k.py',
    './_base_/schedules/adamw-poly-160k.py',
    './_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
