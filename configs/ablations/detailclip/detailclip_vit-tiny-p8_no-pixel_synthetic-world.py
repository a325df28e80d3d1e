# DetailCLIP ablation: the pixel-reconstruction term off (the decoder still feeds the iBOT patch term).
_base_ = ['../../detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(objectives=dict(mae=dict(weight=0.0)))
