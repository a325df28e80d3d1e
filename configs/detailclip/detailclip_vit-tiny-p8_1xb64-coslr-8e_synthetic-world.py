# Tiny DetailCLIP on the synthetic world: attention masking from the EMA teacher, CLIP on both views,
# pixel reconstruction and iBOT patch/CLS self-distillation.
_base_ = [
    '../_base_/models/detailclip_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(
    image_encoder=_base_.tiny_image_encoder, text_encoder=_base_.tiny_text_encoder, embed_dim=_base_.tiny_width,
    objectives=dict(
        mae=dict(patch_size=8, decoder=dict(in_dim=_base_.tiny_width, width=_base_.tiny_width, num_heads=4)),
        ibot=dict(head=dict(in_dim=_base_.tiny_width, out_dim=1024, hidden_dim=512, bottleneck_dim=128))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.two_view_pipeline))
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.1))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=dict(type='EMATeacherHook', half_life_epochs=_base_.tiny_teacher_half_life_epochs),
                     teacher_temp=dict(type='TeacherTempHook'))
