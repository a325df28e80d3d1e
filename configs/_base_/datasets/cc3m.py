# Conceptual Captions 3M: the released Train_GCC-training.tsv (caption<TAB>url, no header) with the images where
# img2dataset's `files` output writes them (images/{shard:05d}/{key}.jpg, 10,000 per shard); failed downloads are
# skipped and counted. Pipelines and loader settings: yfcc15m_slip.py.
_base_ = ['./yfcc15m_slip.py']
data_root = 'data/cc3m'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConceptualCaptionsDataset', data_root=data_root, ann_file='Train_GCC-training.tsv',
    columns=('caption', 'url'), layout='img2dataset', samples_per_shard=10000, data_prefix=dict(img_path='images'),
    pipeline=_base_.train_pipeline))
