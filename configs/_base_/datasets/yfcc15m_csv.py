# YFCC15M as an open_clip-style TSV of image paths and one caption column. Pipelines and loader settings:
# yfcc15m_slip.py.
_base_ = ['./yfcc15m_slip.py']
train_dataloader = dict(dataset=dict(
    _delete_=True, type='CsvImageTextDataset', data_root=_base_.data_root, ann_file='yfcc15m.csv', sep='\t',
    img_key='filepath', caption_key='title', pipeline=_base_.train_pipeline))
