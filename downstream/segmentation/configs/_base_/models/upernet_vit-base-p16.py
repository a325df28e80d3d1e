# UperNet on a ViT-B/16 with iBOT's FPN adapter (docs/methods.md 9.4; iBOT configs/upernet/vit_base_512_ade20k_160k.py):
# the 4 tapped blocks -> strides 4/8/16/32 -> UPerHead (768 channels) + an auxiliary FCN head on level 2 (weight 0.4).
_base_ = ['./encoder-decoder_vit-base-p16.py']
model = dict(
    backbone=dict(drop_path_rate=0.1, fpn_adapter=True, norm_cfg=_base_.norm_cfg),
    decode_head=dict(type='UPerHead', pool_scales=(1, 2, 3, 6), channels=_base_.embed_dim, dropout_ratio=0.1),
    auxiliary_head=dict(type='FCNHead', in_channels=_base_.embed_dim, in_index=2, channels=256, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=150, norm_cfg=_base_.norm_cfg,
                        align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))
