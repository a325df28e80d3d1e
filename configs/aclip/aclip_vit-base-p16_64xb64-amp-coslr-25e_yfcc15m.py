# A-CLIP ViT-B/16 on YFCC15M (docs/methods.md 6.6): 8 nodes x 8 GPUs x 64 = 4096, lr 5e-4, wd 0.5, 25 epochs, fp16 AMP,
# EMA 0.996 -> 1. Token removal is on (the reference README's command leaves it off by accident, Q-A3). SLIP's
# YFCC15M metadata, the caption drawn from title and description per sample (Q-D14); timm 0.5's cls_token init.
_base_ = [
    '../_base_/models/aclip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_slip.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(
    image_encoder=dict(cls_token_init_std=0.02),
    # the teacher text tower: EMA blocks and projection on the student's own token/positional embeddings and ln_final
    teacher=dict(shared=['text_encoder.token_embedding', 'text_encoder.positional_embedding',
                         'text_encoder.ln_final']),  # Q-D13
)
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.aclip_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
default_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.996))
