# AttMask (docs/methods.md 8.4, [unverified]): iBOT whose student hides the tokens the EMA teacher attends to MOST
# (replaced by the mask token), instead of random blocks.
_base_ = ['../ibot/ibot_vit-base-p16_16xb64-amp-coslr-800e_in1k.py']
model = dict(masker=dict(_delete_=True, type='AttMask', ratio=0.5, block_size=1, apply_to=[0, 1]))
