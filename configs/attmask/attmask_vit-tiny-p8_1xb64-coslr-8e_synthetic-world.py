# Tiny AttMask on the synthetic world: tiny iBOT whose student hides the most-attended tokens (mask token).
_base_ = ['../ibot/ibot_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py']
# The recipe's patch-term weight 1.0, which its run was measured with (the tiny iBOT lowers it to 0.05).
model = dict(masker=dict(_delete_=True, type='AttMask', ratio=0.5, block_size=1, apply_to=[0, 1]),
             objectives=dict(ibot=dict(patch_weight=1.0)))
# the schedule its 8-epoch run was measured with (docs/tiny_methods.md): CLS 0.04, patch 0.04 then 0.07 from epoch 1
default_hooks = dict(teacher_temp=dict(_delete_=True, type='TeacherTempHook'))
