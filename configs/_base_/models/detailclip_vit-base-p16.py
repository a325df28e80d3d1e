# DetailCLIP (arXiv 2409.06809, docs/methods.md 7): two views; the EMA teacher's CLS attention on the same view keeps
# the most-attended 2x2 blocks (96 of 196 tokens removed at ratio 0.5); 1/2 CLIP(u) + 1/2 CLIP(v) + pixel reconstruction
# of the removed patches through a 1-block decoder + iBOT patch (decoder outputs, removed positions) + iBOT CLS
# (cross view). Reference-semantics flags are set here (docs/methods.md 11); `*_clean.py` variants flip them.
model = dict(
    type='ImageTextPretrainer',
    image_encoder=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dim=768, depth=12,
                       num_heads=12, mlp_ratio=4.0, freeze_patch_embed=True),  # Q-D6
    text_encoder=dict(type='CLIPTextTransformer', context_length=77, width=512, layers=12, heads=8),
    embed_dim=512,
    masker=dict(type='AttentionMask', ratio=0.5, block_size=2, ratio_semantics='keep_plus_one'),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection']),
    objectives=dict(
        clip=dict(type='CLIPObjective', views=[0, 1], loss=dict(type='CLIPInfoNCELoss', gather_with_grad=True)),
        # order matters: the MAE objective publishes the decoder outputs the iBOT patch term reads
        mae=dict(type='MAEObjective', weight=1.0, patch_size=16, norm_pix=True, pixel_head_init='default',  # Q-D23
                 decoder=dict(in_dim=768, width=768, depth=1, num_heads=16)),
        ibot=dict(type='IBOTObjective', patch_source='decoder', cls_weight=1.0, patch_weight=1.0,
                  head=dict(in_dim=768, out_dim=8192, hidden_dim=2048, bottleneck_dim=256)),
    ))
