# YFCC15M in DetailCLIP's layout (docs/methods.md Q-D14): metadata rows (index, hash, title, description), images:
# data/images/{h[:3]}/{h[3:6]}/{h}.jpg of {h[:3]}.zip under the reference's hard-coded folder test_zip_3, caption
# title + ' ' + description. Its two-view pipeline; the other pipelines of yfcc15m_slip.py remain selectable.
_base_ = ['./yfcc15m_slip.py']
train_dataloader = dict(dataset=dict(
    _delete_=True, type='Yfcc15mDataset', data_root=_base_.data_root, ann_file='yfcc15m.pkl', layout='hash',
    storage='zip', data_prefix=dict(img_path='test_zip_3'), caption_mode='concat',
    pipeline=_base_.two_view_pipeline))
