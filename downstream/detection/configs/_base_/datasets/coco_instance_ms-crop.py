# COCO 2017 instances (boxes + masks, bbox and segm AP through pycocotools) with the DETR-style training augmentation
# of iBOT's (Swin's) COCO recipe, docs/methods.md 9.4: flip, then either a multi-scale resize (short side 480-800, long
# side <= 1333) or a resize -> random crop -> multi-scale resize. Test: short side 800.
_base_ = ['mmdet::_base_/datasets/coco_instance.py']
multi_scale = [(1333, short) for short in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(1333, 400), (1333, 500), (1333, 600)], keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
