# The built-in synthetic world (tools/data/make_synthetic_world.py), generated on first use into `data_root`.
# Train: caption CSV with CLIP's single view (RandomResizedCrop scale 0.5-1, bilinear). Val: zero-shot
# classification on the single-object split and image-text retrieval on the Karpathy-style split.
data_root = 'data/synthetic_world'
crop_size = 64
context_length = 32
world = dict(seed=0, image_size=128)  # generator arguments (see tools/data/make_synthetic_world.py --help)

train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiView', views=[[dict(type='RandomResizedCrop', size=crop_size, scale=(0.5, 1.0),
                                        ratio=(3 / 4, 4 / 3), interpolation='bilinear', antialias=True)]]),
    dict(type='Tokenize', context_length=context_length),
    dict(type='PackImageText'),
]
eval_view = [dict(type='Resize', size=crop_size, interpolation='bilinear', antialias=True),
             dict(type='CenterCrop', size=crop_size)]
zero_shot_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiView', views=[eval_view]),
    dict(type='PackImageText', meta_keys=('img_path', 'gt_label')),
]
retrieval_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiView', views=[eval_view]),
    dict(type='Tokenize', context_length=context_length, key='captions', out_key='caption_tokens'),
    dict(type='PackImageText', meta_keys=('img_path', 'img_id', 'caption_tokens')),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='CsvImageTextDataset', data_root=data_root, ann_file='pretrain/train.csv',
                 data_prefix=dict(img_path='pretrain'), img_key='filepath', caption_key='title',
                 auto_generate=world, pipeline=train_pipeline),
)
eval_loader = dict(batch_size=128, num_workers=2, persistent_workers=False, drop_last=False,
                   sampler=dict(type='DefaultSampler', shuffle=False))
val_dataloader = [
    dict(eval_loader, dataset=dict(type='ImageFolderClassification', data_root=data_root, split='classification/val',
                                   zero_shot_file='zero_shot.json', auto_generate=world,
                                   pipeline=zero_shot_pipeline)),
    dict(eval_loader, dataset=dict(type='KarpathyRetrievalDataset', data_root=data_root,
                                   ann_file='retrieval/karpathy.json', data_prefix=dict(img_path='retrieval'),
                                   split='test', auto_generate=world, pipeline=retrieval_pipeline)),
]
val_evaluator = [dict(type='ZeroShotAccuracy', context_length=context_length), dict(type='RetrievalRecall')]
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
