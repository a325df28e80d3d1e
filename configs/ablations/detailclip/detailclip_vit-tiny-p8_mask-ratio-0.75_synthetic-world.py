# DetailCLIP ablation: attention masking removing a fraction 0.75 of the tokens (clean semantics: ratio = removed).
_base_ = ['../../detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(masker=dict(ratio=0.75, ratio_semantics='remove'))
