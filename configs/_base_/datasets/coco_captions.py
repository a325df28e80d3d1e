# COCO captions (annotations/captions_train2017.json + train2017/): one sample per image, one of its five captions
# drawn per sample (SLIP's COCO loader). Pipelines and loader settings: yfcc15m_slip.py.
_base_ = ['./yfcc15m_slip.py']
data_root = 'data/coco'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='CocoCaptionsDataset', data_root=data_root, ann_file='annotations/captions_train2017.json',
    data_prefix=dict(img_path='train2017'), caption_mode='random_of_list', pipeline=_base_.train_pipeline))
