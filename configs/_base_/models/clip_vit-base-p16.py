# CLIP ViT-B/16 image tower + 12-layer 512-wide text tower, 512-d joint space (docs/methods.md 1.2-1.4).
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12,
                       num_heads=12, mlp_ratio=4.0),
    text_encoder=dict(type='CLIPTextTransformer', context_length=77, width=512, layers=12, heads=8),
    embed_dim=512,
    objectives=dict(clip=dict(type='CLIPObjective', loss=dict(type='CLIPInfoNCELoss', gather_with_grad=True))),
)
