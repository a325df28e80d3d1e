# iBOT (arXiv 2111.07832, docs/methods.md 8.3): image only; multi-crop, BEiT block masking of the global crops with a
# learned mask token, CLS self-distillation (cross view) + masked patch self-distillation from the EMA teacher.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                       drop_path_rate=0.1, use_mask_token=True),
    masker=dict(type='BlockMask', ratio=(0.1, 0.5), mask_prob=0.5, apply_to=[0, 1]),
    teacher=dict(modules=['image_encoder'], views=[0, 1]),  # the teacher sees the global crops only
    objectives=dict(ibot=dict(type='IBOTObjective', patch_source='encoder',
                              head=dict(in_dim=768, out_dim=8192, hidden_dim=2048, bottleneck_dim=256))),
)
