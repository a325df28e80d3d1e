# iBOT's COCO optimisation (docs/methods.md 9.4) on MMDetection's 1x: AdamW lr 1e-4, betas (0.9, 0.999), wd 0.05 (none
# on biases, norms, pos_embed, cls_token: wd_rule 'clean'), layer decay over num_layers = depth + 2 (counted from the
# model), AMP with a dynamic loss scale through the optim wrapper (mmdet's `fp16 = dict(...)` key is ignored by the
# MMEngine Runner); 12 epochs, lr x0.1 after epochs 8 and 11, 500 linear warm-up iterations from 0.001 x lr.
# Layer decay 0.75: iBOT's README command, which is what it ran at 1x (its config says 0.65 with 3x; Q-I2).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='detailclip.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, encoder_prefix='backbone.'))
