# Tiny A-CLIP on the synthetic world (attentive masks from an enclosing teacher crop, SimCLR, BYOL).
_base_ = [
    '../_base_/models/aclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(
    image_encoder=_base_.tiny_image_encoder, text_encoder=_base_.tiny_text_encoder, embed_dim=_base_.tiny_width,
    objectives=dict(
        simclr=dict(head=dict(in_dim=_base_.tiny_width, hidden_dim=512, out_dim=128)),
        byol=dict(projector=dict(in_dim=_base_.tiny_width, hidden_dim=512, out_dim=128),
                  predictor=dict(in_dim=128, hidden_dim=512, out_dim=128))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.aclip_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=dict(type='EMATeacherHook', half_life_epochs=_base_.tiny_teacher_half_life_epochs))
