# YFCC15M as webdataset tar shards ({key}.jpg + {key}.txt, e.g. written by img2dataset), streamed with resampling:
# every rank and worker draws shards with replacement, an endless stream cut into nominal epochs of `epoch_size`
# samples. A resumed run draws a fresh stream (docs/data.md). More sources mix by weight: add
# dict(urls=..., weight=...) to `sources`.
_base_ = ['./yfcc15m_slip.py']
epoch_size = 14_689_580
train_dataloader = dict(
    sampler=None,  # an iterable dataset splits its stream itself (ranks, workers)
    dataset=dict(
        _delete_=True, type='WebImageTextDataset', data_root=_base_.data_root,
        sources=[dict(urls='shards/yfcc15m-{000000..001468}.tar', weight=1.0)], epoch_size=epoch_size,
        resampled=True, shuffle_buffer=1000, shuffle_initial=100, pipeline=_base_.train_pipeline))
