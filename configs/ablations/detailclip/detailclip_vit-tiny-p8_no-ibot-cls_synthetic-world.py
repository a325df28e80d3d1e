# DetailCLIP ablation: the iBOT CLS self-distillation term off.
_base_ = ['../../detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(objectives=dict(ibot=dict(cls_weight=0.0)))
