# Linear probe on a frozen ViT-B/16 (docs/methods.md 9.4; iBOT's ADE20K linear protocol): the 4 tapped blocks resized
# to one grid and concatenated (4 x 768 channels), one 1x1 convolution (FCNHead with no convolutions, no dropout:
# iBOT's evaluation/semantic_segmentation/configs/linear/vit_base_512_ade20k_160k.py). The norm_cfg is never used by a
# head without convolutions.
_base_ = ['./encoder-decoder_vit-base-p16.py']
model = dict(
    backbone=dict(fpn_adapter=False, frozen_stages=12),
    decode_head=dict(type='FCNHead', input_transform='resize_concat', channels=_base_.embed_dim * 4, num_convs=0,
                     concat_input=False, dropout_ratio=0.0))
