# Supervised ViT-B/16 (the DeiT row of the paper's dense-task table): cross-entropy on image-folder labels.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                       drop_path_rate=0.1),
    objectives=dict(cls=dict(type='SupervisedObjective', in_dim=768, num_classes=1000, label_smoothing=0.1)),
)
