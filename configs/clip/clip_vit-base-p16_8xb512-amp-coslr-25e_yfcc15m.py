# CLIP ViT-B/16 on YFCC15M, the SLIP/A-CLIP/DetailCLIP baseline recipe (methods.md 2): global batch 4096 (8 GPUs x 512),
# AdamW lr 5e-4, wd 0.5, 25 epochs, 1 warm-up epoch, fp16 AMP. Plain all-gather (gather_with_grad=False) as SLIP.
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/datasets/yfcc15m_csv.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(objectives=dict(clip=dict(loss=dict(gather_with_grad=False))))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', optimizer=dict(lr=5e-4, weight_decay=0.5))
train_cfg = dict(max_epochs=25)
default_hooks = dict(checkpoint=dict(interval=3587))  # about one epoch at batch 4096
