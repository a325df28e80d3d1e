# A CLIP small enough to train on a laptop CPU: 4-layer 128-wide ViT, patch 8 on 64x64 views, 3-layer text tower.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=64, patch_size=8, embed_dim=128, depth=4,
                       num_heads=4, mlp_ratio=4.0),
    text_encoder=dict(type='CLIPTextTransformer', context_length=32, width=128, layers=3, heads=4),
    embed_dim=128,
    objectives=dict(clip=dict(type='CLIPObjective', loss=dict(type='CLIPInfoNCELoss', gather_with_grad=True))),
)
