# Tiny DINO on the synthetic world's pretraining images: 2 global 64-pixel + 2 local 32-pixel crops (strong colour
# jitter: see `multicrop_pipeline`). Against collapse in 744 iterations from a random tiny encoder: BatchNorm in the
# head's MLP with batch statistics in the teacher too (DINO's `use_bn_in_head`), a teacher that follows faster
# (momentum 0.99) and a constant teacher temperature 0.04. With the ViT-B recipe's head (no norm), momentum 0.996 and
# a 0.04 -> 0.07 warm-up, the loss sat at ln K from iteration 60 (kNN 15.9 % at init -> 9.1 %).
_base_ = [
    '../_base_/models/dino_vit-base-p16.py',
    '../_base_/models/tiny.py',
    '../_base_/datasets/synthetic_world.py',
    '../_base_/schedules/adamw_warmup-coslr.py',
    '../_base_/default_runtime.py',
]
model = dict(image_encoder=_base_.tiny_image_encoder, teacher=dict(bn_batch_stats=True),
             objectives=dict(dino=dict(head=dict(_base_.tiny_distillation_head, norm='bn'))))
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=_base_.multicrop_pipeline))
val_dataloader = test_dataloader = _base_.image_only_val_dataloader
val_evaluator = test_evaluator = [dict(_base_.knn, network='both')]  # student and EMA teacher, as DINO evaluates
optim_wrapper = dict(optimizer=dict(lr=4e-4, weight_decay=0.05))
train_cfg = dict(max_epochs=8, val_at_start=True)
default_hooks = dict(ema=dict(type='EMATeacherHook', momentum=0.99),
                     freeze_last_layer=dict(type='FreezeLastLayerHook', epochs=1),
                     teacher_temp=dict(type='TeacherTempHook', cls=dict(start=0.04, end=0.04, warmup_epochs=0),
                                       patch=None))
