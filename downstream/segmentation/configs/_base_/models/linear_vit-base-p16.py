# Linear probe on a frozen ViT-B/16 (methods.md 9.4; iBOT's ADE20K linear protocol): blocks 3/5/7/11 through the
# final LayerNorm, resized to one grid and concatenated (4 x 768 channels), one 1x1 convolution (FCNHead with no
# convolutions). The norm_cfg is never used by a head without convolutions.
norm_cfg = dict(type='SyncBN', requires_grad=True)
embed_dim = 768
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ViTBackbone', img_size=(512, 512), patch_size=16, embed_dim=embed_dim, depth=12, num_heads=12,
                  mlp_ratio=4.0, stem='patch', out_indices=(3, 5, 7, 11), out_with_norm=True, fpn_adapter=False,
                  frozen_stages=12, pretrained=None),
    decode_head=dict(type='FCNHead', in_channels=[embed_dim] * 4, in_index=[0, 1, 2, 3],
                     input_transform='resize_concat', channels=embed_dim * 4, num_convs=0, concat_input=False,
                     dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
