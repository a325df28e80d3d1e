# DetailCLIP ablation: the contrastive term off (weight 0; still logged).
_base_ = ['../../detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(objectives=dict(clip=dict(weight=0.0)))
