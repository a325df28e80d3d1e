# DetailCLIP with the clean behaviour (docs/methods.md 11): mask ratio as a removal fraction, trainable patch embedding,
# xavier pixel head, EOT kept on truncation, clean wd groups (at ratio 0.5 the masks equal the reference's), a whole
# teacher text tower (Q-D13). The caption policy and the cls_token init are the reference recipe's, not quirks: kept.
_base_ = ['./detailclip_vit-base-p16_16xb256-amp-coslr-50e_yfcc15m.py']
model = dict(
    image_encoder=dict(freeze_patch_embed=False),
    masker=dict(ratio_semantics='remove'),
    teacher=dict(shared=[]),
    objectives=dict(mae=dict(pixel_head_init='xavier')))
train_dataloader = dict(dataset=dict(pipeline=[_base_.load, _base_.two_views, _base_.tokenize_clean, _base_.pack]))
optim_wrapper = dict(paramwise_cfg=dict(wd_rule='clean'))
