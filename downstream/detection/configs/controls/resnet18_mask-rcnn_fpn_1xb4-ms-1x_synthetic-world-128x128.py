# Control for the tiny Mask R-CNN: the same detector, data, schedule and evaluation with mmdet's ResNet-18 (random
# init, plain BN) in place of the ViT and its adapter, and plain AdamW (lr 1e-3, wd 0.05; the layer-decay constructor
# needs a ViT). It shows what the recipe reaches on this split when the backbone is not the question (bbox AP 0.445 and
# 0.504 at 12 epochs in two runs, docs/downstream.md "Tiny Mask R-CNN"):
#   tools/benchmarks/det.sh random downstream/detection/configs/controls/<this file>
_base_ = ['../detailclip-vit-tiny-p8_mask-rcnn_fpn_1xb4-ms-1x_synthetic-world-128x128.py']
model = dict(backbone=dict(_delete_=True, type='mmdet.ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                           frozen_stages=-1, norm_cfg=_base_.norm_cfg, norm_eval=False, style='pytorch'),
             neck=dict(in_channels=[64, 128, 256, 512]))
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05))
