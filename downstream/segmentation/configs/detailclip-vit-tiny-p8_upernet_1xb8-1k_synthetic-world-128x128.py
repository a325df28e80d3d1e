# UperNet on the tiny pretraining encoder (configs/_base_/models/tiny.py: 4 blocks of width 128, patch 8, conv stem)
# on the synthetic world's segmentation split: 128-pixel crops (a 16x16 grid; pos_embed resized from pretraining's
# 8x8 at load), plain BN, fp32, 1k iterations on a CPU.
#   tools/benchmarks/seg.sh CKPT|random <this config> [WORK_DIR]   (docs/downstream.md)
_base_ = [
    './_base_/models/upernet_vit-base-p16.py',
    './_base_/datasets/synthetic-world_ade-128x128.py',
    './_base_/schedules/adamw-poly-1k.py',
    './_base_/default_runtime.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
width = 128
num_classes = 8  # detailclip.datasets.synthetic_world.SHAPES
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(img_size=(128, 128), patch_size=8, embed_dim=width, depth=4, num_heads=4, stem='conv',
                  out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[width] * 4, channels=width // 2, num_classes=num_classes, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=width, channels=width // 4, num_classes=num_classes, norm_cfg=norm_cfg),
    test_cfg=dict(crop_size=(128, 128), stride=(85, 85)))
