# iBOT's COCO model (docs/methods.md 9.4): Cascade Mask R-CNN, 256-channel FPN, three 4conv1fc SyncBN box heads that
# regress decoded boxes under a GIoU loss (weight 10), on the ViT-B/16 backbone.
_base_ = ['mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py', './vit-base-p16.py']
stage_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
bbox_head = dict(type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=256, conv_out_channels=256,
                 fc_out_channels=1024, roi_feat_size=7, num_classes=80, reg_class_agnostic=False,
                 reg_decoded_bbox=True, norm_cfg=dict(type='SyncBN', requires_grad=True),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
model = dict(backbone=dict(_delete_=True, **_base_.vit_backbone),
             neck=dict(in_channels=[_base_.vit_backbone.embed_dim] * 4),
             roi_head=dict(bbox_head=[
                 dict(bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                                 target_stds=stds)) for stds in stage_stds]))
