"""webdataset tar shards written with tarfile in the test: brace expansion, splitting over workers and ranks,
weighted sources, seeded resampled streams, exact counts of bad records and cut shards, and training + resuming
through tools/train.py with two workers."""
import io
import json
import os.path as osp
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from PIL import Image
from torch.utils.data import DataLoader

from detailclip.datasets import WebImageTextDataset, worker_init_fn
from detailclip.registry import HOOKS
from detailclip.testing import run_gloo, tiny_config

PIPELINE = [dict(type='LoadImageRGB'), dict(type='MultiView', views=[[dict(type='CenterCrop', size=16)]]),
            dict(type='Tokenize', context_length=16), dict(type='PackImageText')]


@pytest.fixture(autouse=True)
def detailclip_scope():
    init_default_scope('detailclip')


def png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(buf, 'PNG')
    return buf.getvalue()


def tar_bytes(records) -> bytes:
    """A tar archive of ``records`` ([(key, {ext: bytes})]) as tarfile writes it (end marker, 10 KiB records)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for key, files in records:
            for ext, data in files.items():
                info = tarfile.TarInfo(f'{key}.{ext}')
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def good_records(prefix: str, n: int):
    return [(f'{prefix}_{i:03d}', {'png': png_bytes(hash((prefix, i)) % 1000), 'txt': f'{prefix} {i}'.encode()})
            for i in range(n)]


def write_good_shards(root: Path, prefix: str = 'shard', shards: int = 4, per_shard: int = 5) -> set:
    root.mkdir(parents=True, exist_ok=True)
    keys = set()
    for s in range(shards):
        records = good_records(f'{prefix}{s}', per_shard)
        (root / f'{prefix}-{s:03d}.tar').write_bytes(tar_bytes(records))
        keys |= {k for k, _ in records}
    return keys


def keys_of(samples) -> list:
    return [s['data_samples'].img_path.split('#')[1] for s in samples]


def dataset(sources, **kwargs) -> WebImageTextDataset:
    kwargs = dict(dict(epoch_size=10**6, pipeline=PIPELINE, shuffle_buffer=4, shuffle_initial=2), **kwargs)
    return WebImageTextDataset(sources=sources, **kwargs)


def test_one_pass_reads_every_record_once(tmp_path):
    keys = write_good_shards(tmp_path)
    ds = dataset('shard-{000..003}.tar', data_root=str(tmp_path), resampled=False)
    samples = list(ds)
    assert sorted(keys_of(samples)) == sorted(keys)
    sample = samples[0]
    assert sample['inputs']['views'][0].shape == (3, 16, 16) and sample['inputs']['text'].shape == (16, )
    assert ds.skipped == Counter()


def test_workers_split_the_shards(tmp_path):
    keys = write_good_shards(tmp_path)
    ds = dataset(str(tmp_path / 'shard-{000..003}.tar'), resampled=False)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=pseudo_collate, worker_init_fn=worker_init_fn)
    seen = [k for batch in loader for k in keys_of([dict(data_samples=s) for s in batch['data_samples']])]
    assert sorted(seen) == sorted(keys)  # every record once: each worker read its own shards


def _rank_keys(root: str, rank: int) -> list:
    init_default_scope('detailclip')
    ds = dataset(osp.join(root, 'shard-{000..003}.tar'), resampled=False)
    return keys_of(ds)


@pytest.mark.dist
def test_ranks_split_the_shards(tmp_path):
    from functools import partial
    keys = write_good_shards(tmp_path / 'shards')
    per_rank = run_gloo(partial(_rank_keys, str(tmp_path / 'shards')), 2, tmp_path)
    assert set(per_rank[0]).isdisjoint(per_rank[1])
    assert sorted(per_rank[0] + per_rank[1]) == sorted(keys)


def test_epoch_share_and_len(tmp_path):
    write_good_shards(tmp_path)
    ds = dataset(str(tmp_path / 'shard-{000..003}.tar'), epoch_size=37)
    assert len(ds) == 37 and len(list(ds)) == 37  # resampled: an endless stream cut at the epoch
    loader = DataLoader(ds, batch_size=4, num_workers=2, drop_last=True, collate_fn=pseudo_collate)
    assert len(loader) == 9 and sum(1 for _ in loader) <= len(loader)  # never more batches than reported


def test_resampled_stream_is_seeded_and_resume_draws_afresh(tmp_path):
    write_good_shards(tmp_path)
    urls = str(tmp_path / 'shard-{000..003}.tar')
    first = keys_of(dataset(urls, epoch_size=30, seed=3))
    assert first == keys_of(dataset(urls, epoch_size=30, seed=3))  # reproducible
    assert first != keys_of(dataset(urls, epoch_size=30, seed=4))
    resumed = dataset(urls, epoch_size=30, seed=3)
    resumed.set_position(120)
    fresh = keys_of(resumed)
    assert fresh != first  # a resumed run does not replay the interrupted stream from its start
    again = dataset(urls, epoch_size=30, seed=3)
    again.set_position(120)
    assert keys_of(again) == fresh  # ... and the same resume is reproducible


def test_sources_are_mixed_by_weight(tmp_path):
    write_good_shards(tmp_path, 'a', shards=2)
    write_good_shards(tmp_path, 'b', shards=2)
    sources = [dict(urls='a-{000..001}.tar', weight=3), dict(urls='b-{000..001}.tar', weight=1)]
    keys = keys_of(dataset(sources, data_root=str(tmp_path), epoch_size=800))
    share = sum(k.startswith('a') for k in keys) / len(keys)
    assert 0.68 < share < 0.82


def test_bad_records_and_cut_shards_are_counted_exactly(tmp_path):
    write_good_shards(tmp_path, shards=1)
    bad = [('b_000', {'png': png_bytes(1), 'txt': b'fine'}),
           ('b_001', {'png': png_bytes(2)}),  # no caption
           ('b_002', {'txt': b'no image'}),
           ('b_003', {'png': png_bytes(3), 'txt': b'caf\xe9 latin-1'}),
           ('b_004', {'png': png_bytes(4), 'txt': b' \t '}),
           ('b_005', {'png': b'not an image', 'txt': b'garbage'}),
           ('b_006', {'png': b'', 'txt': b'empty file'}),
           ('b_007', {'png': png_bytes(5), 'txt': 'long caption '.encode() * 20000}),  # kept: the tokenizer cuts it
           ('b_008', {'png': png_bytes(6), 'txt': b'fine too'})]
    (tmp_path / 'bad-000.tar').write_bytes(tar_bytes(bad))
    cut = tar_bytes(good_records('cut', 3))
    (tmp_path / 'bad-001.tar').write_bytes(cut[:512 + 300])  # ends inside the first image
    whole = tar_bytes(good_records('hdr', 3))
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        second = tar.getmember('hdr_001.png').offset
    (tmp_path / 'bad-002.tar').write_bytes(whole[:second])  # ends after a whole record, without an end marker
    (tmp_path / 'bad-003.tar').write_bytes(b'')
    sources = 'shard-000.tar::bad-{000..003}.tar::bad-004.tar'  # bad-004 does not exist
    ds = dataset(sources, data_root=str(tmp_path), resampled=False)
    samples = list(ds)
    stamped = Counter()
    for s in samples:
        stamped.update(s['data_samples'].metainfo.get('skipped', {}))
    expected = Counter(missing_member=2, undecodable_caption=1, empty_caption=1, unreadable_image=1, empty_file=1,
                       truncated_shard=2, unreadable_shard=1, missing_shard=1)
    kept = {k for k in keys_of(samples) if not k.startswith('shard')}
    assert ds.skipped == expected
    # skips travel to the main process in the samples (those after the pass's last sample have no sample to ride)
    assert stamped <= expected and sum(stamped.values()) > 0
    assert {'b_000', 'b_007', 'b_008'} <= kept and not kept & {'b_001', 'b_002', 'b_003', 'b_004', 'b_005'}
    assert 'hdr_000' in kept  # the records before the cut header are used


@HOOKS.register_module(force=True)
class RecordKeysHook(Hook):
    """Writes the sample keys of every training batch to ``path`` (test-only)."""

    def __init__(self, path):
        self.path = path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        with open(self.path, 'a') as f:
            f.write(json.dumps([s.img_path.split('#')[1] for s in data_batch['data_samples']]) + '\n')


def _stream_config(tiny_world: str, work_dir: Path, shards: Path, max_iters: int):
    cfg = tiny_config(tiny_world, str(work_dir), max_iters=max_iters, batch_size=4)
    cfg.train_dataloader = dict(
        batch_size=4, num_workers=2, persistent_workers=True, sampler=None,
        worker_init_fn=dict(type='detailclip.worker_init_fn'),
        dataset=dict(type='WebImageTextDataset', data_root=str(shards), epoch_size=24,
                     sources=[dict(urls='shard-{000..003}.tar', weight=4), dict(urls='bad-000.tar', weight=1)],
                     shuffle_buffer=8, pipeline=cfg.train_pipeline))
    cfg.default_hooks.checkpoint.interval = 4
    cfg.custom_hooks = [dict(type='RecordKeysHook', path=str(work_dir / f'keys_{max_iters}.jsonl'))]
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    return cfg


@pytest.mark.slow
def test_train_and_resume_from_shards_with_two_workers(tiny_world, tmp_path, monkeypatch):
    from tools import train as train_tool
    shards = tmp_path / 'shards'
    write_good_shards(shards)
    (shards / 'bad-000.tar').write_bytes(tar_bytes([('b_0', {'png': png_bytes(1)}), ('b_1', {'txt': b'x'}),
                                                    ('b_2', {'png': png_bytes(2), 'txt': b'ok'})]))
    work = tmp_path / 'run'
    monkeypatch.chdir(tmp_path)
    # an epoch is 24 / 4 = 6 iterations: the first run trains one pass of each worker's stream and part of the next
    for max_iters, resume in ((8, []), (11, ['--resume'])):
        cfg_file = tmp_path / f'stream_{max_iters}.py'
        _stream_config(tiny_world, work, shards, max_iters).dump(str(cfg_file))
        train_tool.main([str(cfg_file), '--work-dir', str(work), *resume])
    assert (work / 'iter_11.pth').exists()
    first = [json.loads(line) for line in open(work / 'keys_8.jsonl')]
    resumed = [json.loads(line) for line in open(work / 'keys_11.jsonl')]
    assert len(first) == 8 and len(resumed) == 3 and all(len(b) == 4 for b in first + resumed)
    # the resumed stream is drawn afresh: it replays no pass the interrupted run trained (iterations 7-8 began the
    # second pass, which a resumed stream without a position-derived seed would repeat)
    assert not any(batch in first for batch in resumed)
    resumed_log_dir = sorted(work.glob('2*'))[-1]  # timestamped log folders: the resumed run's is the last
    scalars = [json.loads(line) for line in open(resumed_log_dir / 'vis_data' / 'scalars.json')]
    losses = {r['iter']: r['loss'] for r in scalars if 'loss' in r}
    assert set(losses) == {9, 10, 11} and all(np.isfinite(list(losses.values())))
    log = open(next(resumed_log_dir.glob('*.log'))).read()
    assert 'training data, epoch 1 (iterations 9-11)' in log
    ckpt = torch.load(work / 'iter_11.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['skipped_samples']['trained'] == 11 * 4  # counts continue across the resume


def test_a_stream_of_only_unusable_shards_fails_loudly(tmp_path):
    (tmp_path / 'cut-000.tar').write_bytes(tar_bytes(good_records('cut', 2))[:700])
    (tmp_path / 'nocap-000.tar').write_bytes(tar_bytes([('n_0', {'png': png_bytes(0)})]))
    ds = dataset(str(tmp_path / '{cut,nocap}-000.tar'), max_refetch=50)  # resampled: would loop forever
    with pytest.raises(RuntimeError, match=r'51 records or shards in a row were unusable.*missing_member'):
        next(iter(ds))
