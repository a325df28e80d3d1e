# DetailCLIP ViT-B/16 on YFCC15M, the reference run (docs/methods.md 7.6): 4 nodes x 4 GPUs x 256 = 4096, lr 5e-4,
# wd 0.5, 50 epochs, fp16 AMP, EMA 0.996 -> 1, iBOT teacher temperature 0.04 (patch: 0.04 in epoch 0, then 0.07), timm
# 0.5.4's cls_token init. The reference's caption is title + ' ' + description (Q-D14); its own metadata layout
# cannot be rebuilt, so the images and fields come from SLIP's metadata (yfcc15m_detailclip.py reads the layout).
_base_ = [
    '../_base_/models/detailclip_vit-base-p16.py',
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
train_dataloader = dict(batch_size=256, dataset=dict(caption_mode='concat', pipeline=_base_.two_view_pipeline))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=50)
default_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.996), teacher_temp=dict(type='TeacherTempHook'))
