# SLIP (arXiv 2112.12750, docs/methods.md 4): CLIP on view 0 + SimCLR (NT-Xent, tau 0.1) on views 1 and 2 through a
# 3-layer 4096-wide BN MLP to 256-d. Views come from the `slip_pipeline` of the dataset base.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12,
                       num_heads=12, mlp_ratio=4.0),
    text_encoder=dict(type='CLIPTextTransformer', context_length=77, width=512, layers=12, heads=8),
    embed_dim=512,
    objectives=dict(
        # SLIP's CLIP loss gathers without grad (Q-S1)
        clip=dict(type='CLIPObjective', views=[0], loss=dict(type='CLIPInfoNCELoss', gather_with_grad=False)),
        simclr=dict(type='SimCLRObjective', views=(1, 2), weight=1.0,
                    head=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=3, bias=True),
                    loss=dict(type='SimCLRLoss', temperature=0.1)),
    ))
