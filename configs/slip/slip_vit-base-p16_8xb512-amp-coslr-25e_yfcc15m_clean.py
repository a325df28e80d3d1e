# SLIP with the clean behaviour: CLIP gathered with grad, EOT kept on truncation, clean wd groups.
_base_ = ['./slip_vit-base-p16_8xb512-amp-coslr-25e_yfcc15m.py']
model = dict(objectives=dict(clip=dict(loss=dict(gather_with_grad=True))))
train_dataloader = dict(dataset=dict(pipeline=[_base_.load, _base_.slip_views, _base_.tokenize_clean, _base_.pack]))
optim_wrapper = dict(paramwise_cfg=dict(wd_rule='clean'))
