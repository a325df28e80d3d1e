# Linear probe of the frozen tiny pretraining encoder (configs/_base_/models/tiny.py) on the synthetic world's
# segmentation split: 128-pixel crops, the 4 blocks resized-concatenated (4 x 128 channels), a 1x1 classifier.
#   tools/benchmarks/seg.sh CKPT|random <this config> [WORK_DIR]   (docs/downstream.md)
_base_ = [
    './_base_/models/linear_vit-base-p16.py',
    './_base_/datasets/synthetic-world_ade-128x128.py',
    './_base_/schedules/adamw-poly-1k.py',
    './_base_/default_runtime.py',
]
width = 128
num_classes = 8  # detailclip.datasets.synthetic_world.SHAPES
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(img_size=(128, 128), patch_size=8, embed_dim=width, depth=4, num_heads=4, stem='conv',
                  out_indices=(0, 1, 2, 3), frozen_stages=4),
    decode_head=dict(in_channels=[width] * 4, channels=width * 4, num_classes=num_classes),
    test_cfg=dict(crop_size=(128, 128), stride=(85, 85)))
optim_wrapper = dict(optimizer=dict(lr=8e-3), paramwise_cfg=dict(layer_decay_rate=1.0))
