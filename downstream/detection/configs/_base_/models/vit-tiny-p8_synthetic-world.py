# What the tiny synthetic-world leaves change in the COCO models (they merge these variables into `model`): the
# tiny pretraining encoder (configs/_base_/models/tiny.py: 4 blocks of width 128, patch 8, conv stem; all 4 blocks
# tapped, the stride-8 grid mapped to strides 4/8/16/32) at 128 pixels (pos_embed resized from pretraining's 8x8 at
# load), plain BN, a 64-channel FPN and heads, anchors of 16-256 pixels (objects span 5-60 pixels), 8 classes, and the
# COCO recipe's 1000 proposals / 512 sampled RoIs per image scaled down 10x to 100 / 64 (with 512 RoIs nearly all
# 100 proposals become mask-head positives: seconds per CPU step). Unlike the paper configs, the tapped blocks go
# through the final LayerNorm (out_with_norm=True): without it the raw residual stream grew during fine-tuning and both
# the pretrained and the random-init 1x runs diverged after ~700 iterations (RPN and RoI losses back to chance); with
# it the same runs stayed stable. (Measured, like the lr below, while mmcv's CPU RoIAlign still read the backbone's
# channels-last maps as NCHW and no RoI head could learn: docs/downstream.md, "Why the levels are contiguous".)
norm_cfg = dict(type='BN', requires_grad=True)
width = 128
channels = 64
num_classes = 8  # detailclip.datasets.synthetic_world.SHAPES
tiny_model = dict(
    backbone=dict(img_size=(128, 128), patch_size=8, embed_dim=width, depth=4, num_heads=4, stem='conv',
                  out_indices=(0, 1, 2, 3), out_with_norm=True, norm_cfg=norm_cfg),
    neck=dict(in_channels=[width] * 4, out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels, anchor_generator=dict(scales=[4])),
    test_cfg=dict(rpn=dict(max_per_img=100)))
tiny_rpn_proposal = dict(max_per_img=100)
tiny_rcnn_sampler = dict(num=64)
# every RoI head but the box heads (three of them in Cascade R-CNN), which each merge tiny_bbox_head
tiny_roi_head = dict(bbox_roi_extractor=dict(out_channels=channels), mask_roi_extractor=dict(out_channels=channels),
                     mask_head=dict(in_channels=channels, conv_out_channels=channels, num_classes=num_classes))
tiny_bbox_head = dict(in_channels=channels, conv_out_channels=channels, fc_out_channels=4 * channels,
                      num_classes=num_classes, norm_cfg=norm_cfg)
# all of the above for Mask R-CNN (one box head, one R-CNN stage)
tiny_mask_rcnn = dict(tiny_model, roi_head=dict(tiny_roi_head, bbox_head=tiny_bbox_head),
                      train_cfg=dict(rpn_proposal=tiny_rpn_proposal, rcnn=dict(sampler=tiny_rcnn_sampler)))
# fp32 (MMEngine's AMP wrapper needs a GPU) and lr 1e-3 instead of the COCO recipe's 1e-4: the FPN and heads train from
# scratch in 900 iterations. At 1e-4 the RoI classifier learnt nothing and random init ended ahead of the tiny CLIP
# (bbox AP 0.006 vs 0.004); at 1e-3 the tiny CLIP ends ahead (0.006 vs 0.000), both before the RoIAlign fix.
tiny_optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=1e-3))
tiny_warmup_iters = 100  # of 900 (1x) or 2700 (3x): the schedules' 500 would be most of a 1x run
