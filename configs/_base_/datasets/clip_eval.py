# Evaluation of a 224-px CLIP model (docs/methods.md 9.1, 9.2): zero-shot ImageNet-1k val, the shipped class names and
# 7 templates (data/imagenet/val/<synset id>/*.JPEG), and image-text retrieval on the Karpathy test splits of COCO
# (5k images; data/coco/dataset_coco.json + val2014/) and Flickr30k (1k; data/flickr30k/dataset_flickr30k.json +
# flickr30k-images/). Every image: Resize(224, shorter side, bicubic as OpenAI's preprocessing; the SLIP/DetailCLIP
# code uses bilinear) -> CenterCrop(224). Dataset names are CLIP_benchmark's. Test-only: no training data.
crop_size = 224
context_length = 77
interpolation = 'bicubic'

load = dict(type='LoadImageRGB')
eval_view = dict(type='MultiView', views=[[dict(type='Resize', size=crop_size, interpolation=interpolation,
                                                antialias=True),
                                           dict(type='CenterCrop', size=crop_size)]])
zero_shot_pipeline = [load, eval_view, dict(type='PackImageText', meta_keys=('img_path', 'gt_label'))]
retrieval_pipeline = [load, eval_view,
                      dict(type='Tokenize', context_length=context_length, key='captions', out_key='caption_tokens'),
                      dict(type='PackImageText', meta_keys=('img_path', 'img_id', 'caption_tokens'))]
eval_loader = dict(batch_size=256, num_workers=8, persistent_workers=False, drop_last=False,
                   sampler=dict(type='DefaultSampler', shuffle=False))
imagenet_zero_shot = dict(eval_loader, dataset=dict(
    type='ImageFolderClassification', data_root='data/imagenet', split='val', zero_shot_preset='imagenet1k',
    pipeline=zero_shot_pipeline))
coco_retrieval = dict(eval_loader, dataset=dict(
    type='KarpathyRetrievalDataset', data_root='data/coco', ann_file='dataset_coco.json', split='test',
    pipeline=retrieval_pipeline))
flickr_retrieval = dict(eval_loader, dataset=dict(
    type='KarpathyRetrievalDataset', data_root='data/flickr30k', ann_file='dataset_flickr30k.json',
    data_prefix=dict(img_path='flickr30k-images'), split='test', pipeline=retrieval_pipeline))

train_dataloader = train_cfg = optim_wrapper = None
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = [imagenet_zero_shot, coco_retrieval, flickr_retrieval]
test_evaluator = [
    dict(type='ZeroShotAccuracy', context_length=context_length, dataset_name='imagenet1k', prefix='imagenet'),
    dict(type='RetrievalRecall', dataset_name='mscoco_captions', prefix='coco'),
    dict(type='RetrievalRecall', dataset_name='flickr30k', prefix='flickr30k'),
]
test_cfg = dict(type='MultiTestLoop')
