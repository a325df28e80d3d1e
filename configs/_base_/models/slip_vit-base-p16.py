# SLIP (arXiv 2112.12750, methods.md 4): CLIP on view 0 + SimCLR (NT-Xent, tau 0.1) on views 1 and 2 through a
# 3-layer 4096-wide BN MLP to 256-d. Views come from the `slip_pipeline` of the dataset base.
_base_ = ['./clip_vit-base-p16.py']
model = dict(objectives=dict(
    clip=dict(views=[0], loss=dict(gather_with_grad=False)),  # SLIP's CLIP loss gathers without grad (Q-S1)
    simclr=dict(type='SimCLRObjective', views=(1, 2), weight=1.0,
                head=dict(type='MLPHead', in_dim=768, hidden_dim=4096, out_dim=256, num_layers=3, bias=True),
                loss=dict(type='SimCLRLoss', temperature=0.1)),
))
