# The synthetic world's COCO split (tools/data/make_synthetic_world.py: COCO 2017 layout, RLE masks, category ids
# from 1, 128-pixel images, 8 shape classes): a multi-scale (96-160) flip augmentation, test at 128; bbox and segm AP
# through pycocotools.
_base_ = ['mmdet::_base_/datasets/coco_instance.py']
world_root = 'data/synthetic_world'  # tools/downstream.py generates the world here when it is missing
data_root = world_root + '/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'ring', 'cross', 'diamond', 'hexagon'))  # SHAPES
scale = 128
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', scales=[(s, s) for s in range(scale * 3 // 4, scale * 5 // 4 + 1, 16)],
         keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(scale, scale), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
