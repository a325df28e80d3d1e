# Tiny FLIP-style CLIP on the synthetic world: the tiny CLIP with 50 % random token removal, for 8 epochs.
_base_ = ['../clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py']
model = dict(masker=dict(type='RandomMask', ratio=0.5))
train_cfg = dict(max_epochs=8)
