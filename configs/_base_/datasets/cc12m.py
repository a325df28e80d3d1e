# Conceptual 12M: the released cc12m.tsv (url<TAB>caption, no header); images as for CC3M (cc3m.py).
_base_ = ['./cc3m.py']
data_root = 'data/cc12m'
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file='cc12m.tsv', columns=('url', 'caption')))
