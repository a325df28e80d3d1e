# ImageNet-1k train as an image folder (data/imagenet/train/<wnid>/*.JPEG) for the image-only methods.
data_root = 'data/imagenet'
crop_size = 224
local_size = 96

load = dict(type='LoadImageRGB')
pack = dict(type='PackImageText')
mae_pipeline = [load, dict(type='MultiView', views=['mae'], size=crop_size), pack]
multicrop_pipeline = [load, dict(type='MultiCrop', global_size=crop_size, local_size=local_size, n_global=2,
                                 n_local=10, global_scale=(0.25, 1.0), local_scale=(0.05, 0.25)), pack]
supervised_pipeline = [load, dict(type='MultiView', views=['supervised'], size=crop_size),
                       dict(type='PackImageText', meta_keys=('img_path', 'gt_label'))]
train_dataloader = dict(
    batch_size=64,
    num_workers=10,
    persistent_workers=True,
    worker_init_fn=dict(type='detailclip.worker_init_fn'),  # one thread per worker, rank-distinct seeds
    pin_memory=True,
    drop_last=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderClassification', data_root=data_root, split='train', pipeline=mae_pipeline),
)
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
