# MAE (arXiv 2111.06377, docs/methods.md 8.1): image only; 75 % random removal, 8-block 512-wide decoder, norm-pix loss.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12),
    masker=dict(type='RandomMask', ratio=0.75),
    objectives=dict(mae=dict(type='MAEObjective', patch_size=16, norm_pix=True, publish_decoded=False,
                             decoder=dict(in_dim=768, width=512, depth=8, num_heads=16))),
)
