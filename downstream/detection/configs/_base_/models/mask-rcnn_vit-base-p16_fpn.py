# Mask R-CNN with a 256-channel FPN on the ViT-B/16 backbone (4 levels from its adapter, a 5th by FPN max-pooling).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './vit-base-p16.py']
model = dict(backbone=dict(_delete_=True, **_base_.vit_backbone),
             neck=dict(in_channels=[_base_.vit_backbone.embed_dim] * 4))
