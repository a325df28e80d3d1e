# Tiny AttMask on the synthetic world: tiny iBOT whose student hides the most-attended tokens (mask token).
_base_ = ['../ibot/ibot_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
model = dict(masker=dict(_delete_=True, type='AttMask', ratio=0.5, block_size=1, apply_to=[0, 1]))
