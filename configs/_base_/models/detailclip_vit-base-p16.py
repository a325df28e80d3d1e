# DetailCLIP (arXiv 2409.06809, methods.md 7): two views; the EMA teacher's CLS attention on the same view keeps the
# most-attended 2x2 blocks (96 of 196 tokens removed at ratio 0.5); 1/2 CLIP(u) + 1/2 CLIP(v) + pixel reconstruction
# of the removed patches through a 1-block decoder + iBOT patch (decoder outputs, removed positions) + iBOT CLS
# (cross view). Reference-semantics flags are set here (methods.md 12.3); `*_clean.py` variants flip them.
_base_ = ['./clip_vit-base-p16.py']
model = dict(
    image_encoder=dict(freeze_patch_embed=True),  # Q-D6
    masker=dict(type='AttentionMask', ratio=0.5, block_size=2, ratio_semantics='keep_plus_one'),
    teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection']),
    objectives=dict(
        clip=dict(views=[0, 1]),
        # order matters: the MAE objective publishes the decoder outputs the iBOT patch term reads
        mae=dict(type='MAEObjective', weight=1.0, patch_size=16, norm_pix=True, pixel_head_init='default',  # Q-D23
                 decoder=dict(in_dim=768, width=768, depth=1, num_heads=16)),
        ibot=dict(type='IBOTObjective', patch_source='decoder', cls_weight=1.0, patch_weight=1.0,
                  head=dict(in_dim=768, out_dim=8192, hidden_dim=2048, bottleneck_dim=256)),
    ))
