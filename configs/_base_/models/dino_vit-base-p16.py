# DINO (arXiv 2104.14294, docs/methods.md 8.2): image only; multi-crop, EMA teacher on the global crops, CLS
# self-distillation through a 3-layer head with a weight-normalised 65536-way last layer.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                       drop_path_rate=0.1),
    teacher=dict(modules=['image_encoder'], views=[0, 1]),  # the teacher sees the global crops only
    objectives=dict(dino=dict(type='DINOObjective', global_views=(0, 1),
                              head=dict(in_dim=768, out_dim=65536, hidden_dim=2048, bottleneck_dim=256))),
)
