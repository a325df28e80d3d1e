# MaskCLIP-style (Dong et al. CVPR 2023, docs/methods.md 5; the paper's code was never released, so this is a
# re-implementation whose settings are marked [unverified] there): CLIP on the full view 0; the same view, 75 %
# randomly removed, goes through a 1-block decoder whose patch outputs are distilled (iBOT patch cross-entropy) to the
# EMA teacher's tokens of the full view. Views: the `same_view_twice_pipeline` of the dataset base.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12,
                       num_heads=12, mlp_ratio=4.0),
    text_encoder=dict(type='CLIPTextTransformer', context_length=77, width=512, layers=12, heads=8),
    embed_dim=512,
    masker=dict(type='RandomMask', ratio=0.75, apply_to=[1]),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection']),
    objectives=dict(
        clip=dict(type='CLIPObjective', views=[0], loss=dict(type='CLIPInfoNCELoss', gather_with_grad=True)),
        msd=dict(type='MaskedDistillationObjective', views=[1], teacher_views=[0], weight=1.0,
                 decoder=dict(in_dim=768, width=768, depth=1, num_heads=16),
                 head=dict(in_dim=768, out_dim=8192, hidden_dim=2048, bottleneck_dim=256)),
    ))
