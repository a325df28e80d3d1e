# DetailCLIP ablation: random token removal (same 50 % removal fraction) instead of the teacher's attention.
_base_ = ['../../detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(masker=dict(_delete_=True, type='RandomMask', ratio=0.5))
