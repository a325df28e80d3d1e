# YFCC15M as SLIP ships it: the metadata pickle yfcc15m.pkl ((uid, title, description) rows, 14,689,580 images) and
# the images as member {d[5:]}.jpg of images/{d[:2]}/{d[2:5]}.zip, d = the uid as 8 digits (docs/data.md). The caption
# is the title or the description, drawn per sample with its seed (SLIP, A-CLIP; methods.md Q-D14); the DetailCLIP
# leaves set caption_mode='concat'. The YFCC15M paper configs read this. Pipelines and loader settings: yfcc15m_csv.py.
_base_ = ['./yfcc15m_csv.py']
train_dataloader = dict(dataset=dict(
    _delete_=True, type='Yfcc15mDataset', data_root=_base_.data_root, ann_file='yfcc15m.pkl', layout='slip',
    storage='zip', data_prefix=dict(img_path='images'), caption_mode='random_title_or_desc',
    pipeline=_base_.train_pipeline))
