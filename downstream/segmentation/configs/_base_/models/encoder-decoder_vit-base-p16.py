# What both ADE20K models share (docs/methods.md 9.4): an EncoderDecoder on a ViT-B/16 at 512 pixels whose blocks
# 3/5/7/11 are tapped through the final LayerNorm (out_with_norm, Q-I3), a 150-class decode head on the 4 levels under
# cross-entropy, and a sliding-window test (512 crops, stride 341). The backbone weights come from `pretrained` (an
# export of tools/model_converters/export_backbone.py; tools/downstream.py sets it).
norm_cfg = dict(type='SyncBN', requires_grad=True)
embed_dim = 768
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ViTBackbone', img_size=(512, 512), patch_size=16, embed_dim=embed_dim, depth=12, num_heads=12,
                  mlp_ratio=4.0, stem='patch', out_indices=(3, 5, 7, 11), out_with_norm=True, pretrained=None),
    decode_head=dict(in_channels=[embed_dim] * 4, in_index=[0, 1, 2, 3], num_classes=150, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
