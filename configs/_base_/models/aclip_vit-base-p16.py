# A-CLIP (arXiv 2212.08653, methods.md 6): two student crops keep the blocks the EMA teacher attends to most in an
# enclosing crop (box-mapped attention); 1/2 CLIP(v1) + 1/2 CLIP(v2) + SimCLR(v1, v2) + 2 BYOL(pred(v_k), EMA proj).
# Reference-semantics flags are set here (methods.md 12.3); `aclip_*_clean.py` variants flip them.
_base_ = ['./clip_vit-base-p16.py']
model = dict(
    image_encoder=dict(freeze_patch_embed=True),  # Q-D6
    masker=dict(type='AttentionMask', ratio=0.5, block_size=2, ratio_semantics='keep_plus_one',
                box_mapping='exact', teacher_view=0),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection'],
                 bn_batch_stats=True),  # the EMA projector's BN uses batch statistics (6.2)
    objectives=dict(
        clip=dict(views=[0, 1]),
        simclr=dict(type='SimCLRObjective', views=(0, 1), weight=1.0, same_view=True, concat_views=True,  # Q-A1
                    head=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=3, bias=True),
                    loss=dict(type='SimCLRLoss', temperature=0.1)),
        byol=dict(type='BYOLObjective', views=(0, 1), teacher_view=0, weight=2.0,
                  projector=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=2, bias=False),
                  predictor=dict(type='MLPHead', in_dim=256, hidden_dim=4096, out_dim=256, num_layers=2,
                                 bias=False)),
    ))
