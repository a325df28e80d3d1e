# YFCC15M as SLIP ships it: the metadata pickle yfcc15m.pkl ((uid, title, description) rows, 14,689,580 images) and
# the images as member {d[5:]}.jpg of images/{d[:2]}/{d[2:5]}.zip, d = the uid as 8 digits (docs/data.md). The caption
# is the title or the description, drawn per sample with its seed (SLIP, A-CLIP; docs/methods.md Q-D14); the DetailCLIP
# leaves set caption_mode='concat'. The YFCC15M paper configs read this; yfcc15m_csv.py, yfcc15m_detailclip.py,
# webdataset_yfcc15m.py, cc3m.py, cc12m.py and coco_captions.py reuse its pipelines and loader with other formats.
# 224-pixel views, 77-token captions truncated like the reference (EOT dropped, Q-T1: `tokenize_clean` keeps it).
# One pipeline per method family; leaves pick one.
data_root = 'data/yfcc15m'
crop_size = 224
context_length = 77

load = dict(type='LoadImageRGB')
tokenize = dict(type='Tokenize', context_length=context_length, truncate_keep_eot=False)
tokenize_clean = dict(type='Tokenize', context_length=context_length, truncate_keep_eot=True)
pack = dict(type='PackImageText')
clip_views = dict(type='MultiView', views=['clip'], size=crop_size)
two_views = dict(type='MultiView', views=['detailclip'], num_repeats=2, size=crop_size)
same_view_twice = dict(type='MultiView', views=['clip'], size=crop_size, copies=2)
slip_views = dict(type='MultiView', views=['clip', 'slip_simclr', 'slip_simclr'], size=crop_size)
aclip_views = dict(type='EnclosingCropTriplet', size=crop_size, scale=(0.5, 1.0), legacy_union_bug=True)  # Q-D15
train_pipeline = [load, clip_views, tokenize, pack]
two_view_pipeline = [load, two_views, tokenize, pack]
same_view_twice_pipeline = [load, same_view_twice, tokenize, pack]
slip_pipeline = [load, slip_views, tokenize, pack]
aclip_pipeline = [load, aclip_views, tokenize, pack]

train_dataloader = dict(
    batch_size=512,
    num_workers=10,
    persistent_workers=True,
    worker_init_fn=dict(type='detailclip.worker_init_fn'),  # one thread per worker, rank-distinct seeds
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='Yfcc15mDataset', data_root=data_root, ann_file='yfcc15m.pkl', layout='slip', storage='zip',
                 data_prefix=dict(img_path='images'), caption_mode='random_title_or_desc', pipeline=train_pipeline),
)
# Zero-shot ImageNet evaluation during training comes with the evaluation issue (ImageNet class names shipped).
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
