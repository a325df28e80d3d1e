"""Image-text datasets on real files written to tmp_path: bad rows skipped and counted, image modes, seeded views."""
import csv
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

from detailclip.datasets import (CLIPTokenizer, CsvImageTextDataset, ImageFolderClassification,
                                 KarpathyRetrievalDataset, LoadImageRGB)
from detailclip.registry import DATASETS

CROP, CTX = 24, 16


@pytest.fixture(autouse=True)
def detailclip_scope():
    init_default_scope('detailclip')  # as the runner does (default_scope in the config): pipelines use our TRANSFORMS


def pipeline(tokenize=dict(type='Tokenize', context_length=CTX), meta_keys=('img_path', 'sample_idx')):
    steps = [dict(type='LoadImageRGB'),
             dict(type='MultiView', views=[[dict(type='RandomResizedCrop', size=CROP, scale=(0.2, 1.0),
                                                 antialias=True), dict(type='RandomHorizontalFlip')]])]
    if tokenize:
        steps.append(tokenize)
    return steps + [dict(type='PackImageText', meta_keys=meta_keys)]


def rgb_array(seed: int, size=(40, 48)) -> np.ndarray:
    """A textured image (gradient + noise) so that different crops give different pixels."""
    rng = np.random.default_rng(seed)
    h, w = size
    grad = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 50, h)[:, None, None]
    return np.clip(grad + rng.integers(0, 55, (h, w, 3)), 0, 255).astype(np.uint8)


def save_image(path: Path, seed: int = 0, fmt: str = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb_array(seed)).save(path, format=fmt)
    return path


def write_csv(path: Path, rows, header=('filepath', 'title'), sep=','):
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)


GOOD = {'good1.jpg': 'a red circle, left of a square', 'good2.png': 'A BLUE   square', 'sub/good3.jpeg': 'two dots'}


@pytest.fixture
def csv_root(tmp_path) -> Path:
    """data_root with images/ and train.csv holding 3 good rows and 5 bad ones."""
    img = tmp_path / 'images'
    for i, name in enumerate(GOOD):
        save_image(img / name, seed=i)
    (img / 'garbage.jpg').write_bytes(b'this is not a jpeg at all' * 10)
    save_image(img / 'full.jpg', seed=9)
    data = (img / 'full.jpg').read_bytes()
    (img / 'truncated.jpg').write_bytes(data[:len(data) // 2])
    save_image(img / 'empty.jpg', seed=10)
    rows = [('good1.jpg', GOOD['good1.jpg']), ('missing.jpg', 'a file that is not there'),
            ('garbage.jpg', 'garbage bytes'), ('good2.png', GOOD['good2.png']), ('empty.jpg', ''),
            ('truncated.jpg', 'half a jpeg'), ('empty.jpg', '  \t '), ('sub/good3.jpeg', GOOD['sub/good3.jpeg'])]
    write_csv(tmp_path / 'train.csv', rows)
    return tmp_path


def csv_dataset(root, **kwargs) -> CsvImageTextDataset:
    return CsvImageTextDataset(ann_file='train.csv', data_root=str(root), data_prefix=dict(img_path='images'),
                               pipeline=pipeline(), **kwargs)


def assert_valid(sample: dict, ctx: int = CTX):
    views = sample['inputs']['views']
    assert len(views) == 1
    assert views[0].dtype == torch.uint8 and views[0].shape == (3, CROP, CROP)
    text = sample['inputs']['text']
    assert text.dtype == torch.long and text.shape == (ctx, )
    assert text[0] == 49406 and 49407 in text.tolist()


def test_bad_rows_are_skipped_and_counted(csv_root):
    ds = csv_dataset(csv_root)
    # empty and whitespace-only captions are dropped at load time
    assert len(ds) == 6
    assert ds.skipped == Counter(empty_caption=2)
    paths = [Path(ds.get_data_info(i)['img_path']).name for i in range(len(ds))]
    assert paths == ['good1.jpg', 'missing.jpg', 'garbage.jpg', 'good2.png', 'truncated.jpg', 'good3.jpeg']

    # one pass of prepare_data: each bad file returns None and counts exactly once under its reason
    prepared = [ds.prepare_data(i) for i in range(len(ds))]
    assert [p is None for p in prepared] == [False, True, True, False, True, False]
    assert ds.skipped == Counter(empty_caption=2, missing_file=1, unreadable_image=2)

    # __getitem__ of every index returns a valid sample (a bad one is replaced by a good one)
    tok = CLIPTokenizer(CTX)
    good_paths = {str(csv_root / 'images' / name) for name in GOOD}
    np.random.seed(0)
    for i in range(len(ds)):
        sample = ds[i]
        assert_valid(sample)
        path = sample['data_samples'].img_path
        assert path in good_paths
        if prepared[i] is not None:
            assert path == ds.get_data_info(i)['img_path']
        caption = GOOD[str(Path(path).relative_to(csv_root / 'images'))]
        assert torch.equal(sample['inputs']['text'], tok(caption.strip()))
    assert ds.skipped['missing_file'] >= 2 and ds.skipped['unreadable_image'] >= 4
    assert set(ds.skipped) == {'empty_caption', 'missing_file', 'unreadable_image'}


def test_captions_are_stripped_and_paths_joined(csv_root):
    ds = csv_dataset(csv_root)
    info = ds.get_data_info(0)
    assert info['caption'] == GOOD['good1.jpg']
    assert info['img_path'] == str(csv_root / 'images' / 'good1.jpg')


def test_tsv_with_tab_separator(tmp_path):
    for i, name in enumerate(GOOD):
        save_image(tmp_path / 'images' / name, seed=i)
    rows = [(name, cap) for name, cap in GOOD.items()]
    write_csv(tmp_path / 'train.tsv', rows, header=('path', 'caption'), sep='\t')
    ds = CsvImageTextDataset(ann_file='train.tsv', data_root=str(tmp_path), data_prefix=dict(img_path='images'),
                             img_key='path', caption_key='caption', sep='\t', pipeline=pipeline())
    assert len(ds) == 3
    # the caption with a comma survives intact
    assert [ds.get_data_info(i)['caption'] for i in range(3)] == list(GOOD.values())
    for i in range(3):
        assert_valid(ds[i])
    # read as CSV, the header is one column and the configured columns are missing
    with pytest.raises(KeyError, match='path'):
        CsvImageTextDataset(ann_file='train.tsv', data_root=str(tmp_path), img_key='path', caption_key='caption')


def test_missing_column_raises_keyerror_naming_columns(csv_root):
    with pytest.raises(KeyError) as info:
        CsvImageTextDataset(ann_file='train.csv', data_root=str(csv_root), img_key='image', caption_key='title')
    message = str(info.value)
    assert "'image'" in message and 'filepath' in message and 'title' in message
    with pytest.raises(KeyError, match='caption'):
        CsvImageTextDataset(ann_file='train.csv', data_root=str(csv_root), caption_key='caption')


def test_rows_with_a_wrong_field_count_are_malformed_and_a_bom_is_read(tmp_path):
    save_image(tmp_path / 'a.jpg')
    rows = ['filepath,title,source',
            'a.jpg,fine,web',
            'a.jpg,"a cat, quoted",web',  # a quoted comma is part of the caption
            'a.jpg,a cat, sitting on a mat,web',  # an unquoted comma: 4 fields
            'a.jpg,no source',  # a missing field: 2 fields
            '',  # a blank line is no row
            'a.jpg,\u200b\u2060,web',  # only zero-width characters
            'a.jpg,\x07\x00,web']  # only control characters
    (tmp_path / 'train.csv').write_bytes(b'\xef\xbb\xbf' + '\r\n'.join(rows).encode() + b'\r\n')  # BOM, as Excel
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path))
    assert [ds.get_data_info(i)['caption'] for i in range(len(ds))] == ['fine', 'a cat, quoted']
    assert ds.skipped == Counter(malformed_row=2, invisible_caption=2)


def test_an_unclosed_quote_names_the_line(tmp_path):
    lines = ['filepath,title', 'a.jpg,"never closed'] + ['a.jpg,' + 'x' * 100] * 2000  # the rest becomes one field
    (tmp_path / 'train.csv').write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=r'train.csv, line \d+: field larger than field limit .* never closes'):
        CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path))


@pytest.mark.parametrize('build', [
    lambda root: CsvImageTextDataset(ann_file='train.csv', data_root=str(root)),
    lambda root: ImageFolderClassification(split='classification/val', data_root=str(root)),
    lambda root: KarpathyRetrievalDataset(ann_file='retrieval/karpathy.json', data_root=str(root)),
], ids=['csv', 'image_folder', 'karpathy'])
def test_missing_data_root_names_generator(tmp_path, build):
    with pytest.raises(FileNotFoundError, match='make_synthetic_world.py') as info:
        build(tmp_path / 'no_such_root')
    assert 'no_such_root' in str(info.value)


def test_missing_annotation_and_zero_shot_file(tmp_path):
    (tmp_path / 'classification' / 'val' / 'circle').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='make_synthetic_world.py'):
        CsvImageTextDataset(ann_file='nope.csv', data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='zero_shot.json'):
        ImageFolderClassification(split='classification/val', zero_shot_file='zero_shot.json', data_root=str(tmp_path))
    # a class listed in the zero-shot file without its folder
    (tmp_path / 'zero_shot.json').write_text(json.dumps(dict(classes=['circle', 'square'], templates=['{}'])))
    with pytest.raises(FileNotFoundError, match='square'):
        ImageFolderClassification(split='classification/val', zero_shot_file='zero_shot.json', data_root=str(tmp_path))


# ----------------------------------------------------------------------------------------------------- image modes
def _gray16(path):
    Image.fromarray((np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64)).save(path)  # 0 .. 65472
    return np.arange(32 * 32).reshape(32, 32) * 64 / 256


def _gray8(path):
    arr = (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint8)
    Image.fromarray(arr, mode='L').save(path)
    return arr


def _palette(path):
    img = Image.new('P', (32, 32))
    img.putpalette([200, 10, 30, 5, 250, 120] + [0] * 762)
    img.paste(1, (0, 0, 16, 32))  # left half index 1, right half index 0
    img.save(path)
    expected = np.empty((32, 32, 3))
    expected[:, :16], expected[:, 16:] = (5, 250, 120), (200, 10, 30)
    return expected


def _cmyk(path):
    Image.new('CMYK', (32, 32), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink-free cyan/magenta
    return np.broadcast_to(np.array([255, 0, 0]), (32, 32, 3))


@pytest.mark.parametrize('name,make,src_mode,tol', [
    ('gray16.png', _gray16, 'I;16', 1.0),
    ('gray8.png', _gray8, 'L', 0),
    ('gray8.jpg', _gray8, 'L', 3),
    ('palette.png', _palette, 'P', 0),
    ('cmyk.jpg', _cmyk, 'CMYK', 3),
])
def test_image_modes_decode_to_rgb(tmp_path, name, make, src_mode, tol):
    path = tmp_path / name
    expected = make(path)
    with Image.open(path) as img:
        assert img.mode == src_mode
    out = LoadImageRGB()(dict(img_path=str(path)))['img']
    assert out.mode == 'RGB' and out.size == (32, 32)
    arr = np.asarray(out).astype(float)
    if expected.ndim == 2:
        expected = np.repeat(expected[..., None], 3, axis=-1)
    assert np.abs(arr - expected).max() <= tol
    if src_mode == 'I;16':  # scaled, not clipped: the brightest pixel is 65472 / 256 = 255.75 -> 255, mid-range ~128
        assert arr[0, 0, 0] == 0 and arr[16, 0, 0] == pytest.approx(16 * 32 * 64 / 256, abs=1)


def test_image_modes_through_dataset(tmp_path):
    makers = {'gray16.png': _gray16, 'gray8.jpg': _gray8, 'palette.png': _palette, 'cmyk.jpg': _cmyk}
    for name, make in makers.items():
        make(tmp_path / name)
    write_csv(tmp_path / 'train.csv', [(name, f'image {name}') for name in makers])
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path), pipeline=pipeline())
    for i in range(len(ds)):
        assert ds.prepare_data(i) is not None
        assert_valid(ds[(i, i)])
    assert ds.skipped == Counter()


# --------------------------------------------------------------------------------------------------- seeded views
def test_seeded_keys_reproduce_views_and_leave_global_rng_alone(csv_root):
    ds = csv_dataset(csv_root)
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()

    a = ds[(0, 7)]['inputs']['views'][0]
    b = ds[(0, 7)]['inputs']['views'][0]
    c = ds[(0, 8)]['inputs']['views'][0]
    others = [ds[(0, s)]['inputs']['views'][0] for s in range(20, 26)]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert sum(not torch.equal(a, o) for o in others) == len(others)
    # a bad index under a seed is replaced by the same good sample every time
    bad = [ds[(1, 5)] for _ in range(2)]
    assert bad[0]['data_samples'].img_path == bad[1]['data_samples'].img_path
    assert torch.equal(bad[0]['inputs']['views'][0], bad[1]['inputs']['views'][0])

    torch_state, py_state, np_state = states
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    now = np.random.get_state()
    assert np.array_equal(now[1], np_state[1]) and now[2] == np_state[2]

    # the seed fully determines the view, whatever the global RNG state was
    torch.manual_seed(999)
    np.random.seed(999)
    assert torch.equal(ds[(0, 7)]['inputs']['views'][0], a)


def test_same_seed_same_view_across_dataset_instances(csv_root):
    one, two = csv_dataset(csv_root), csv_dataset(csv_root)
    for idx in (0, 3, 5):
        assert torch.equal(one[(idx, 42)]['inputs']['views'][0], two[(idx, 42)]['inputs']['views'][0])


# ------------------------------------------------------------------------------------------- image folder + Karpathy
@pytest.fixture
def folder_root(tmp_path) -> Path:
    val = tmp_path / 'classification' / 'val'
    counts = {'circle': 2, 'square': 3, 'triangle': 1}
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            save_image(val / name / f'{i:02d}.png', seed=10 * c + i)
    (val / 'square' / 'notes.txt').write_text('not an image')
    spec = dict(classes=['square', 'triangle', 'circle'], templates=['a photo of a {}.', 'a drawing of a {}.'])
    (tmp_path / 'zero_shot.json').write_text(json.dumps(spec))
    return tmp_path


def test_image_folder_reads_zero_shot_json(folder_root):
    cfg = dict(type='ImageFolderClassification', data_root=str(folder_root), split='classification/val',
               zero_shot_file='zero_shot.json', pipeline=pipeline(None, ('img_path', 'gt_label')))
    ds = DATASETS.build(cfg)
    assert ds.metainfo['classes'] == ['square', 'triangle', 'circle']
    assert ds.metainfo['templates'] == ['a photo of a {}.', 'a drawing of a {}.']
    labels = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
    assert labels == [0, 0, 0, 1, 2, 2]
    for i in range(len(ds)):
        sample = ds[i]
        cls = Path(sample['data_samples'].img_path).parent.name
        assert ds.metainfo['classes'][sample['data_samples'].gt_label] == cls
        assert sample['inputs']['views'][0].shape == (3, CROP, CROP)
        assert 'text' not in sample['inputs']


def test_image_folder_without_json_and_with_overrides(folder_root):
    ds = ImageFolderClassification(split='classification/val', data_root=str(folder_root))
    assert ds.metainfo['classes'] == ['circle', 'square', 'triangle'] and ds.metainfo['templates'] == ['{}']
    assert [ds.get_data_info(i)['gt_label'] for i in range(len(ds))] == [0, 0, 1, 1, 1, 2]
    ds = ImageFolderClassification(split='classification/val', data_root=str(folder_root),
                                   zero_shot_file='zero_shot.json', classes=['triangle', 'circle'],
                                   templates=['itap of a {}'])
    assert ds.metainfo['classes'] == ['triangle', 'circle'] and ds.metainfo['templates'] == ['itap of a {}']
    assert len(ds) == 3


def test_karpathy_keeps_split_with_all_captions(tmp_path):
    images = []
    for i, split in enumerate(['train', 'test', 'val', 'test', 'restval', 'test']):
        folder = f'part{i % 2}'
        save_image(tmp_path / 'retrieval' / folder / f'{i}.jpg', seed=i)
        sentences = [dict(raw=f' caption {k} of image {i} ') for k in range(1 + i % 3)]
        images.append(dict(filepath=folder, filename=f'{i}.jpg', split=split, sentences=sentences))
    (tmp_path / 'retrieval' / 'karpathy.json').write_text(json.dumps(dict(images=images)))
    tokenize = dict(type='Tokenize', context_length=CTX, key='captions', out_key='caption_tokens')
    ds = KarpathyRetrievalDataset(ann_file='retrieval/karpathy.json', data_root=str(tmp_path),
                                  data_prefix=dict(img_path='retrieval'), split='test',
                                  pipeline=pipeline(tokenize, ('img_path', 'img_id', 'caption_tokens')))
    kept = [1, 3, 5]
    assert len(ds) == 3
    for j, i in enumerate(kept):
        info = ds.get_data_info(j)
        assert info['img_id'] == j
        assert info['img_path'] == str(tmp_path / 'retrieval' / f'part{i % 2}' / f'{i}.jpg')
        assert info['captions'] == [f'caption {k} of image {i}' for k in range(1 + i % 3)]
        sample = ds[j]
        assert sample['data_samples'].img_id == j
        assert sample['data_samples'].caption_tokens.shape == (1 + i % 3, CTX)
        assert sample['inputs']['views'][0].dtype == torch.uint8
    train = KarpathyRetrievalDataset(ann_file='retrieval/karpathy.json', data_root=str(tmp_path), split='train')
    assert len(train) == 1 and train.get_data_info(0)['captions'] == ['caption 0 of image 0']
