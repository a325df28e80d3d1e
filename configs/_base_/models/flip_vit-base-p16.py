# FLIP-style CLIP (methods.md 3): the student drops a random half of its patch tokens; CLIP on the masked views.
_base_ = ['./clip_vit-base-p16.py']
model = dict(masker=dict(type='RandomMask', ratio=0.5))
