# A-CLIP with the clean behaviour (docs/methods.md 11): a correct enclosing teacher crop, SimCLR on the two different
# views, removal-fraction mask ratio, trainable patch embedding, EOT kept on truncation, clean wd groups, a whole
# teacher text tower (Q-D13). The caption policy and the cls_token init are the reference recipe's, not quirks: kept.
_base_ = ['./aclip_vit-base-p16_64xb64-amp-coslr-25e_yfcc15m.py']
model = dict(
    image_encoder=dict(freeze_patch_embed=False),
    masker=dict(ratio_semantics='remove', box_mapping='grid_sample'),
    teacher=dict(shared=[]),
    objectives=dict(simclr=dict(same_view=False)))
train_dataloader = dict(dataset=dict(pipeline=[_base_.load, dict(_base_.aclip_views, legacy_union_bug=False),
                                               _base_.tokenize_clean, _base_.pack]))
optim_wrapper = dict(paramwise_cfg=dict(wd_rule='clean'))
