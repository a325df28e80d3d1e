# FLIP-style CLIP with the clean behaviour: EOT kept on truncation, clean wd groups.
_base_ = ['./flip_vit-base-p16_8xb512-amp-coslr-25e_yfcc15m.py']
train_dataloader = dict(dataset=dict(pipeline=[_base_.load, _base_.clip_views, _base_.tokenize_clean, _base_.pack]))
optim_wrapper = dict(paramwise_cfg=dict(wd_rule='clean'))
