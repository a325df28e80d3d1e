# A-CLIP (arXiv 2212.08653, docs/methods.md 6): two student crops keep the blocks the EMA teacher attends to most in an
# enclosing crop (box-mapped attention); 1/2 CLIP(v1) + 1/2 CLIP(v2) + SimCLR(v1, v2) + 2 BYOL(pred(v_k), teacher proj).
# Reference-semantics flags are set here (docs/methods.md 11); `aclip_*_clean.py` variants flip them.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12,
                       num_heads=12, mlp_ratio=4.0, freeze_patch_embed=True),  # Q-D6
    text_encoder=dict(type='CLIPTextTransformer', context_length=77, width=512, layers=12, heads=8),
    embed_dim=512,
    masker=dict(type='AttentionMask', ratio=0.5, block_size=2, ratio_semantics='keep_plus_one',
                box_mapping='exact', teacher_view=0),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection'],
                 bn_batch_stats=True),  # the teacher projector's BN: batch statistics (docs/methods.md 6.2)
    objectives=dict(
        clip=dict(type='CLIPObjective', views=[0, 1], loss=dict(type='CLIPInfoNCELoss', gather_with_grad=True)),
        simclr=dict(type='SimCLRObjective', views=(0, 1), weight=1.0, same_view=True, concat_views=True,  # Q-A1
                    head=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=3, bias=True),
                    loss=dict(type='SimCLRLoss', temperature=0.1)),
        byol=dict(type='BYOLObjective', views=(0, 1), teacher_view=0, weight=2.0,
                  projector=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=2, bias=False),
                  predictor=dict(type='MLPHead', in_dim=256, hidden_dim=4096, out_dim=256, num_layers=2,
                                 bias=False)),
    ))
