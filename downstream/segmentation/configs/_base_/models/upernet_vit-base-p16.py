# UperNet on a ViT-B/16 with iBOT's FPN adapter (methods.md 9.4; iBOT configs/upernet/vit_base_512_ade20k_160k.py):
# blocks 3/5/7/11 through the final LayerNorm (out_with_norm, Q-I3) -> strides 4/8/16/32 -> UPerHead (768 channels)
# + an auxiliary FCN head on level 2 (weight 0.4). The backbone weights come from `pretrained` (an export of
# tools/model_converters/export_backbone.py; tools/downstream.py sets it).
norm_cfg = dict(type='SyncBN', requires_grad=True)
embed_dim = 768
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ViTBackbone', img_size=(512, 512), patch_size=16, embed_dim=embed_dim, depth=12, num_heads=12,
                  mlp_ratio=4.0, stem='patch', drop_path_rate=0.1, out_indices=(3, 5, 7, 11), out_with_norm=True,
                  fpn_adapter=True, norm_cfg=norm_cfg, pretrained=None),
    decode_head=dict(type='UPerHead', in_channels=[embed_dim] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                     channels=embed_dim, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels=embed_dim, in_index=2, channels=256, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
