# CLIP ViT-B/16 on YFCC15M, the SLIP/A-CLIP/DetailCLIP baseline (docs/methods.md 2): global batch 4096 (8 GPUs x 512),
# AdamW lr 5e-4, wd 0.5, 25 epochs, 1 warm-up epoch, fp16 AMP. Plain all-gather (gather_with_grad=False) as SLIP.
# SLIP's YFCC15M metadata, the caption drawn from title and description per sample (Q-D14), and timm 0.5's
# cls_token init (SLIP pins timm 0.5.0: trunc-normal std 0.02, timm >= 0.6 draws std 1e-6).
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_slip.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=dict(cls_token_init_std=0.02), objectives=dict(clip=dict(loss=dict(gather_with_grad=False))))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
default_hooks = dict(checkpoint=dict(interval=3587))  # about one epoch at batch 4096
