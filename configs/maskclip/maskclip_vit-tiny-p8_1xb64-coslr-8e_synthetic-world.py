# Tiny MaskCLIP-style model on the synthetic world (CLIP + masked self-distillation, 75 % removed).
_base_ = [
    '../_base_/models/maskclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(
    image_encoder=_base_.tiny_image_encoder, text_encoder=_base_.tiny_text_encoder, embed_dim=_base_.tiny_width,
    objectives=dict(
        msd=dict(decoder=dict(in_dim=_base_.tiny_width, width=_base_.tiny_width, num_heads=4),
                 head=dict(in_dim=_base_.tiny_width, out_dim=1024, hidden_dim=512, bottleneck_dim=128))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.same_view_twice_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=dict(type='EMATeacherHook', half_life_epochs=_base_.tiny_teacher_half_life_epochs),
                     teacher_temp=dict(type='TeacherTempHook'))
