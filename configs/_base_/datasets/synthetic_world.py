# The built-in synthetic world (tools/data/make_synthetic_world.py), generated on first use into `data_root`.
# Train: the caption CSV, with one pipeline per method family below (leaves pick one through
# `train_dataloader = dict(dataset=dict(pipeline=_base_.<name>_pipeline))`). Val: zero-shot classification on the
# single-object split and image-text retrieval on the Karpathy-style split.
data_root = 'data/synthetic_world'
crop_size = 64
local_size = 32
context_length = 32
world = dict(seed=0, image_size=128)  # generator arguments (see tools/data/make_synthetic_world.py --help)

load = dict(type='LoadImageRGB')
tokenize = dict(type='Tokenize', context_length=context_length)
pack = dict(type='PackImageText')
train_pipeline = [load, dict(type='MultiView', views=['clip'], size=crop_size), tokenize, pack]
two_view_pipeline = [load, dict(type='MultiView', views=['detailclip'], num_repeats=2, size=crop_size), tokenize, pack]
same_view_twice_pipeline = [load, dict(type='MultiView', views=['clip'], size=crop_size, copies=2), tokenize, pack]
slip_pipeline = [load, dict(type='MultiView', views=['clip', 'slip_simclr', 'slip_simclr'], size=crop_size),
                 tokenize, pack]
aclip_pipeline = [load, dict(type='EnclosingCropTriplet', size=crop_size, scale=(0.5, 1.0)), tokenize, pack]
# image-only methods read the same images and ignore the captions
mae_pipeline = [load, dict(type='MultiView', views=['mae'], size=crop_size), pack]
# DINO/iBOT multi-crop. Every synthetic image has its own background colours, so under DINO's mild colour jitter two
# crops of an image match by colour alone and the encoder learns no shape (tiny DINO, 3 epochs: kNN 15.0 %, init
# 15.9 %). SimCLR-strength jitter (0.8, 0.8, 0.8, hue 0.5) takes that shortcut away (19.7 %). Global crops cover
# 0.4-1 of the image (DINO's default), so both usually hold the objects. The blur radii, in pixels of 224-pixel views
# in the paper recipes, are scaled to these views (x64/224 global, x32/224 local).
ssl_colour = [dict(type='RandomHorizontalFlip', p=0.5),
              dict(type='RandomApply', p=0.9, transforms=[
                  dict(type='ColorJitter', brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)]),
              dict(type='RandomGrayscale', p=0.3)]
multicrop_pipeline = [load, dict(
    type='MultiCrop', global_size=crop_size, local_size=local_size, n_global=2, n_local=2, global_scale=(0.4, 1.0),
    local_scale=(0.05, 0.4),
    global_recipes=[ssl_colour + [dict(type='PILGaussianBlur', sigma=(0.03, 0.57), p=1.0)],
                    ssl_colour + [dict(type='PILGaussianBlur', sigma=(0.03, 0.57), p=0.1),
                                  dict(type='RandomSolarize', threshold=128, p=0.2)]],
    local_recipe=ssl_colour + [dict(type='PILGaussianBlur', sigma=(0.014, 0.29), p=0.5)]), pack]
supervised_pipeline = [load, dict(type='MultiView', views=['supervised'], size=crop_size),
                       dict(type='PackImageText', meta_keys=('img_path', 'gt_label'))]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    worker_init_fn=dict(type='detailclip.worker_init_fn'),  # one thread per worker, rank-distinct seeds
    drop_last=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='CsvImageTextDataset', data_root=data_root, ann_file='pretrain/train.csv',
                 data_prefix=dict(img_path='pretrain'), img_key='filepath', caption_key='title',
                 auto_generate=world, pipeline=train_pipeline),
)
eval_view = dict(type='MultiView', views=[[dict(type='Resize', size=crop_size, interpolation='bilinear',
                                                antialias=True),
                                           dict(type='CenterCrop', size=crop_size)]])
zero_shot_pipeline = [load, eval_view, dict(type='PackImageText', meta_keys=('img_path', 'gt_label'))]
retrieval_pipeline = [load, eval_view,
                      dict(type='Tokenize', context_length=context_length, key='captions', out_key='caption_tokens'),
                      dict(type='PackImageText', meta_keys=('img_path', 'img_id', 'caption_tokens'))]
eval_loader = dict(batch_size=128, num_workers=2, persistent_workers=False, drop_last=False,
                   sampler=dict(type='DefaultSampler', shuffle=False))
zero_shot_val = dict(eval_loader, dataset=dict(
    type='ImageFolderClassification', data_root=data_root, split='classification/val', zero_shot_file='zero_shot.json',
    auto_generate=world, pipeline=zero_shot_pipeline))
retrieval_val = dict(eval_loader, dataset=dict(
    type='KarpathyRetrievalDataset', data_root=data_root, ann_file='retrieval/karpathy.json',
    data_prefix=dict(img_path='retrieval'), split='test', auto_generate=world, pipeline=retrieval_pipeline))
knn_train = dict(eval_loader, num_workers=0, dataset=dict(
    type='ImageFolderClassification', data_root=data_root, split='classification/train',
    zero_shot_file='zero_shot.json', auto_generate=world, pipeline=zero_shot_pipeline))
knn = dict(type='KNNAccuracy', train_dataloader=knn_train, k=20)
# Text methods: zero-shot top-1 and retrieval on their splits, kNN top-1 of encoder features on the single-object
# split (the one figure every method, image-only ones included, is compared on).
val_dataloader = [zero_shot_val, retrieval_val, zero_shot_val]
val_evaluator = [dict(type='ZeroShotAccuracy', context_length=context_length), dict(type='RetrievalRecall'), knn]
# Image-only methods (no text tower): `val_dataloader = _base_.image_only_val_dataloader`, same for the evaluator.
image_only_val_dataloader = [zero_shot_val]
image_only_val_evaluator = [knn]
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
