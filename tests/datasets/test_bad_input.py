"""Bad input never stops a run and is never silent: a YFCC15M corpus (SLIP's zip layout) holding every kind of bad
image, caption and archive trains to the end through the Runner with two workers, and the log reports exactly the
skips a single-process replay of the same sample stream counts; a flood of bad data stops the run with the reasons."""
import io
import json
import pickle
import struct
import time
import zipfile
import zlib
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image

from detailclip.datasets import (CLIPTokenizer, CorruptSampleError, CsvImageTextDataset, LoadImageRGB,
                                 ResumableInfiniteSampler, Yfcc15mDataset, clean_caption)
from detailclip.testing import tiny_config

BATCH, ITERS = 8, 6


@pytest.fixture(autouse=True)
def detailclip_scope():
    init_default_scope('detailclip')


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def rgb(seed: int, size=(48, 40)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb: nothing behind it is decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b'')


def palette_png() -> bytes:
    img = Image.new('P', (40, 32))
    img.putpalette([200, 10, 30, 5, 250, 120] + [0] * 762)
    img.paste(1, (0, 0, 20, 32))
    return encode(img, 'PNG')


JPEG = encode(rgb(99), 'JPEG')
# uid -> (image bytes or None for "not in its archive", title, description, expected outcome)
CORPUS = {
    **{10000000 + i: (encode(rgb(i), 'PNG'), f'picture {i}', f'textured picture number {i}', 'ok') for i in range(20)},
    10100000: (encode(rgb(1).convert('L'), 'JPEG'), 'grayscale', '', 'ok'),
    10100001: (encode(Image.new('CMYK', (40, 32), (0, 255, 255, 0)), 'JPEG'), 'cmyk', '', 'ok'),
    10100002: (encode(Image.fromarray((np.arange(40 * 32, dtype=np.uint16).reshape(32, 40) * 50)), 'PNG'),
               '16 bit', '', 'ok'),
    10100003: (palette_png(), 'palette', '', 'ok'),
    10100004: (encode(rgb(2), 'PNG'), 'very long caption ' * 5000, '', 'ok'),
    10200000: (b'definitely not an image' * 4, 'unreadable', '', 'unreadable_image'),
    10200001: (JPEG[:len(JPEG) // 2], 'truncated', '', 'unreadable_image'),
    10200002: (b'', 'empty file', '', 'empty_file'),
    10200003: (png_header_only(50000, 50000), 'huge', '', 'image_too_large'),
    10200004: (encode(rgb(3, size=(4, 4)), 'PNG'), 'tiny', '', 'image_too_small'),
    10200005: (encode(rgb(4), 'PNG'), '', '', 'empty_caption'),
    10200006: (encode(rgb(5), 'PNG'), '  \t ', '\n', 'empty_caption'),
    10200007: (encode(rgb(6), 'PNG'), b'caf\xe9 au lait', '', 'undecodable_caption'),
    10200009: (encode(rgb(7), 'PNG'), '\u200b\u200c', '\u2060', 'invisible_caption'),  # zero-width only
    10200010: (encode(rgb(8), 'PNG'), '\x00\x07', '\ufeff\u3164', 'invisible_caption'),  # control, BOM, filler
    10200008: (None, 'member missing from its zip', '', 'missing_member'),
    10300000: (None, 'archive missing', '', 'missing_archive'),
}


def write_corpus(root: Path) -> Path:
    """SLIP's layout: member {d[5:]}.jpg of images/{d[:2]}/{d[2:5]}.zip, rows (uid, title, description)."""
    for uid, (data, *_rest) in CORPUS.items():
        d = f'{uid:08d}'
        if uid == 10300000:
            continue  # its archive images/10/300.zip is never written
        archive = root / 'images' / d[:2] / f'{d[2:5]}.zip'
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, 'a') as zf:
            if data is not None:
                zf.writestr(f'{d[5:]}.jpg', data)
    with open(root / 'yfcc15m.pkl', 'wb') as f:
        pickle.dump([(uid, title, desc) for uid, (_, title, desc, _) in CORPUS.items()], f)
    return root


@pytest.fixture(scope='module')
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp('bad_corpus'))


def test_every_kind_is_converted_or_skipped_with_its_reason(corpus):
    ds = Yfcc15mDataset(data_root=str(corpus), ann_file='yfcc15m.pkl', pipeline=[dict(type='LoadImageRGB')])
    for idx, (uid, (*_, outcome)) in enumerate(CORPUS.items()):
        before = Counter(ds.skipped)
        out = ds.prepare_data(idx)
        if outcome == 'ok':
            assert out is not None and out['img'].mode == 'RGB', uid
        else:
            assert out is None and ds.skipped - before == Counter({outcome: 1}), (uid, ds.skipped - before)


def test_image_limits_are_config_values(tmp_path):
    path = tmp_path / 'a.png'
    rgb(0).save(path)  # 48 x 40
    LoadImageRGB(max_pixels=48 * 40, min_size=40)(dict(img_path=str(path)))
    with pytest.raises(CorruptSampleError, match='max_pixels=1919') as info:
        LoadImageRGB(max_pixels=48 * 40 - 1)(dict(img_path=str(path)))
    assert info.value.reason == 'image_too_large'
    with pytest.raises(CorruptSampleError, match='min_size=41'):
        LoadImageRGB(min_size=41)(dict(img_path=str(path)))


def test_captions():
    assert clean_caption(b' caf\xc3\xa9 ') == 'café'
    for bad, reason in ((b'caf\xe9', 'undecodable_caption'), ('bad \udce9', 'undecodable_caption'),
                        (None, 'empty_caption'), (' \n\t', 'empty_caption'), ('\u200b\u200c', 'invisible_caption'),
                        ('\x00\x07', 'invisible_caption'), ('\u2060', 'invisible_caption'),
                        (b'\xe2\x80\x8b \x7f', 'invisible_caption'), ('\u00ad\u202e\u0301', 'invisible_caption'),
                        ('\u2800\u3000\u115f', 'invisible_caption')):
        with pytest.raises(CorruptSampleError) as info:
            clean_caption(bad)
        assert info.value.reason == reason, bad
    # a visible character anywhere keeps the caption, zero-width characters and all
    for good in ('\u200bcat', '\U0001f436', '\x00 7', '\u0915\u094d\u200d\u0937'):
        assert clean_caption(good) == good.strip()
    tokenizer = CLIPTokenizer(16)
    start = time.perf_counter()
    ids = tokenizer('a' * 2_000_000)  # one two-megabyte word: BPE would take minutes without the cut
    assert time.perf_counter() - start < 5 and ids[-1] == tokenizer.eot_id
    assert tokenizer(' '.join(['word'] * 100000)).tolist() == tokenizer(' '.join(['word'] * 20)).tolist()


def replay_skips(corpus: Path, pipeline, draws: int, per_epoch: int):
    """The skips of the first ``draws`` samples of the Runner's stream, counted in this process, per epoch."""
    ds = Yfcc15mDataset(data_root=str(corpus), ann_file='yfcc15m.pkl', pipeline=pipeline)
    sampler = ResumableInfiniteSampler(ds, shuffle=True, seed=0)  # the Runner seeds the sampler with cfg's seed
    epochs = []
    for start in range(0, draws, per_epoch):
        before = Counter(ds.skipped)
        for key in islice(iter_from(sampler, start), min(per_epoch, draws - start)):
            ds[key]
        epochs.append(ds.skipped - before)
    return epochs, ds.skipped


def iter_from(sampler, position: int):
    sampler.set_position(position)
    return iter(sampler)


def describe(counts: Counter) -> str:
    return ', '.join(f'{k}={v}' for k, v in sorted(counts.items())) or 'none'


@pytest.mark.slow
def test_corpus_trains_to_the_end_with_exact_counts_over_two_workers(corpus, tiny_world, tmp_path):
    cfg = tiny_config(tiny_world, str(tmp_path / 'run'), max_iters=ITERS, batch_size=BATCH)
    cfg.train_dataloader.update(num_workers=2, persistent_workers=True,
                                worker_init_fn=dict(type='detailclip.worker_init_fn'))
    cfg.train_dataloader.dataset = dict(type='Yfcc15mDataset', data_root=str(corpus), ann_file='yfcc15m.pkl',
                                        pipeline=cfg.train_pipeline)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == ITERS

    per_epoch = len(CORPUS) // BATCH * BATCH  # iterations of an epoch x batch size
    epochs, total = replay_skips(corpus, cfg.train_pipeline, ITERS * BATCH, per_epoch)
    assert sum(total.values()) > 0
    log = open(next(Path(runner.log_dir).glob('*.log'))).read()
    iters_per_epoch = len(CORPUS) // BATCH
    for e, counts in enumerate(epochs):
        first, last = e * iters_per_epoch + 1, min((e + 1) * iters_per_epoch, ITERS)
        assert (f'training data, epoch {e} (iterations {first}-{last}): skipped {sum(counts.values())} of '
                f'{sum(counts.values()) + (last - first + 1) * BATCH} drawn samples ({describe(counts)})') in log
    assert f'in total skipped {sum(total.values())} ({describe(total)})' in log
    scalars = [json.loads(line) for line in open(Path(runner.log_dir) / 'vis_data' / 'scalars.json')]
    final = next(r for r in scalars if r.get('step') == ITERS and 'data/skipped' in r)
    assert final['data/skipped'] == sum(total.values())
    assert {k[len('data/skipped_'):]: v for k, v in final.items() if k.startswith('data/skipped_')} == total


def _runner(corpus: Path, tiny_world: str, work_dir: Path, hook: dict, dataset: dict = None) -> Runner:
    cfg = tiny_config(tiny_world, str(work_dir), max_iters=ITERS, batch_size=BATCH)
    cfg.train_dataloader.dataset = dataset or dict(type='Yfcc15mDataset', data_root=str(corpus),
                                                   ann_file='yfcc15m.pkl', pipeline=cfg.train_pipeline)
    cfg.default_hooks.skipped_samples.update(hook)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    return Runner.from_cfg(cfg)


def test_a_flood_of_bad_samples_stops_with_the_reasons(corpus, tiny_world, tmp_path):
    runner = _runner(corpus, tiny_world, tmp_path / 'flood', dict(max_skip_fraction=0.05, min_samples=BATCH,
                                                                  interval=1))
    with pytest.raises(RuntimeError, match=r'training data is mostly unusable: \d+ of \d+ drawn samples skipped, '
                                           r'over the limit max_skip_fraction=0.05: .*max_skip_fraction'):
        runner.train()
    runner = _runner(corpus, tiny_world, tmp_path / 'count', dict(max_skipped=0, interval=1))
    with pytest.raises(RuntimeError, match='max_skipped=0'):
        runner.train()


def test_rows_dropped_at_load_are_reported_and_limited(tmp_path, tiny_world):
    (tmp_path / 'a.png').write_bytes(encode(rgb(0), 'PNG'))
    rows = ['filepath,title'] + ['a.png,fine'] * BATCH + ['a.png,'] * 6
    (tmp_path / 'train.csv').write_text('\n'.join(rows) + '\n')
    csv = dict(type='CsvImageTextDataset', data_root=str(tmp_path), ann_file='train.csv',
               pipeline=[dict(type='LoadImageRGB'), dict(type='MultiView', views=['clip'], size=16),
                         dict(type='Tokenize', context_length=16), dict(type='PackImageText')])
    runner = _runner(None, tiny_world, tmp_path / 'load', dict(max_skip_fraction=0.3), dataset=csv)
    with pytest.raises(RuntimeError, match='6 of 14 annotation rows dropped at load.*empty_caption=6'):
        runner.train()


def test_a_dataset_of_only_bad_samples_names_the_reasons(tmp_path):
    (tmp_path / 'train.csv').write_text('filepath,title\nnone.png,a\nnothing.png,b\n')
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path), pipeline=[dict(type='LoadImageRGB')],
                             max_refetch=5)
    with pytest.raises(RuntimeError, match=r"6 draws in a row were skipped.*'missing_file': 6"):
        ds[(0, 0)]


def _gathered_counts(rank: int) -> dict:
    from detailclip.engine.hooks import SkippedSamplesHook
    hook = SkippedSamplesHook()
    hook._pending, hook._pending_trained = Counter(missing_file=rank + 1, **({'empty_caption': 2} if rank else {})), 8
    hook._gather()
    return dict(total=dict(hook.total), trained=hook.trained)


@pytest.mark.dist
def test_counts_are_summed_over_ranks(tmp_path):
    from detailclip.testing import run_gloo
    for result in run_gloo(_gathered_counts, 2, tmp_path):
        assert result == dict(total=dict(missing_file=3, empty_caption=2), trained=16)
