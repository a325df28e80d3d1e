# YFCC15M as an open_clip-style CSV of image paths and captions (the metadata-pickle and webdataset loaders of the
# data issue replace this). CLIP's single view: RandomResizedCrop(224, scale 0.5-1, bilinear), 77-token captions.
data_root = 'data/yfcc15m'
crop_size = 224
context_length = 77

train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='MultiView', views=[[dict(type='RandomResizedCrop', size=crop_size, scale=(0.5, 1.0),
                                        ratio=(3 / 4, 4 / 3), interpolation='bilinear', antialias=True)]]),
    dict(type='Tokenize', context_length=context_length),
    dict(type='PackImageText'),
]
train_dataloader = dict(
    batch_size=512,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='CsvImageTextDataset', data_root=data_root, ann_file='yfcc15m.csv', sep='\t',
                 img_key='filepath', caption_key='title', pipeline=train_pipeline),
)
# Zero-shot ImageNet evaluation during training comes with the evaluation issue (ImageNet class names shipped).
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
