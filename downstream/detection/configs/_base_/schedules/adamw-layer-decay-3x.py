# The 1x schedule (adamw-layer-decay-1x.py) for 36 epochs, lr x0.1 after epochs 27 and 33, with the layer decay of
# iBOT's 3x config: 0.65 (its README command overrides 0.75 with 1x; Q-I2).
_base_ = ['./adamw-layer-decay-1x.py']
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.65))
