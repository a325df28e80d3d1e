# MaskCLIP-style (Dong et al. CVPR 2023, methods.md 5; the paper's code was never released, so this is a
# re-implementation whose settings are marked [unverified] there): CLIP on the full view 0; the same view, 75 %
# randomly removed, goes through a 1-block decoder whose patch outputs are distilled (iBOT patch cross-entropy) to the
# EMA teacher's tokens of the full view. Views: the `same_view_twice_pipeline` of the dataset base.
_base_ = ['./clip_vit-base-p16.py']
model = dict(
    masker=dict(type='RandomMask', ratio=0.75, apply_to=[1]),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection']),
    objectives=dict(
        clip=dict(views=[0]),
        msd=dict(type='MaskedDistillationObjective', views=[1], teacher_views=[0], weight=1.0,
                 decoder=dict(in_dim=768, width=768, depth=1, num_heads=16),
                 head=dict(in_dim=768, out_dim=8192, hidden_dim=2048, bottleneck_dim=256)),
    ))
