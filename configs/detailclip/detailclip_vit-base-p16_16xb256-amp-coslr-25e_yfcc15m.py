# DetailCLIP ViT-B/16, the 25-epoch row of the paper's tables.
_base_ = ['./detailclip_vit-base-p16_16xb256-amp-coslr-50e_yfcc15m.py']
train_cfg = dict(max_epochs=25)
