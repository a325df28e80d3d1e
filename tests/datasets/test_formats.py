"""Pretraining formats on small real files written in each format: SLIP's YFCC15M pickle with SLIP's and
DetailCLIP's image layouts (zip archives and folders), CC3M/CC12M TSVs, COCO captions; caption policies; one decode
per sample."""
import csv
import inspect
import io
import json
import os.path as osp
import pickle
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from detailclip.datasets import (CocoCaptionsDataset, ConceptualCaptionsDataset, CsvImageTextDataset,
                                 WebImageTextDataset, Yfcc15mDataset, pick_caption)
from detailclip.datasets.transforms import loading
from detailclip.registry import DATASETS
from detailclip.testing import ROOT

LOAD = [dict(type='LoadImageRGB')]


@pytest.fixture(autouse=True)
def detailclip_scope():
    init_default_scope('detailclip')


def image_array(seed: int, size=(24, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def png_bytes(seed: int) -> bytes:
    """Lossless, so a decoded sample can be compared with the array it came from (the layouts name it .jpg)."""
    buf = io.BytesIO()
    Image.fromarray(image_array(seed)).save(buf, format='PNG')
    return buf.getvalue()


def decoded(ds, idx: int, seed: int = 0) -> dict:
    """The pipeline output of draw ``(idx, seed)`` (image and caption), asserting nothing was skipped."""
    out = ds[(idx, seed)]
    assert ds.skipped == Counter()
    return out


def assert_image(results: dict, seed: int):
    assert np.array_equal(np.asarray(results['img']), image_array(seed))


# ------------------------------------------------------------------------------------------------------ YFCC15M
SLIP_ROWS = [(12345678, 'red star', 'a small red star above a ring'), (12345999, 'blue', 'a blue square'),
             (98700001, '', 'only a description'), (5, 'five', 'uid five pads to 00000005')]


def write_slip_yfcc(root: Path, storage: str) -> Path:
    """SLIP's layout: d = f'{uid:08d}', member {d[5:]}.jpg of images/{d[:2]}/{d[2:5]}.zip (or that folder)."""
    for uid, *_ in SLIP_ROWS:
        d = f'{uid:08d}'
        if storage == 'zip':
            archive = root / 'images' / d[:2] / f'{d[2:5]}.zip'
            archive.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive, 'a') as zf:
                zf.writestr(f'{d[5:]}.jpg', png_bytes(uid % 1000))
        else:
            path = root / 'images' / d[:2] / d[2:5] / f'{d[5:]}.jpg'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png_bytes(uid % 1000))
    with open(root / 'yfcc15m.pkl', 'wb') as f:
        pickle.dump(SLIP_ROWS, f)
    return root


@pytest.mark.parametrize('storage', ['zip', 'folder'])
def test_yfcc_slip_layout(tmp_path, storage):
    root = write_slip_yfcc(tmp_path, storage)
    ds = DATASETS.build(dict(type='Yfcc15mDataset', data_root=str(root), ann_file='yfcc15m.pkl', storage=storage,
                             pipeline=LOAD))
    assert len(ds) == len(SLIP_ROWS)
    # the two uids sharing 12/345 live in the same archive
    if storage == 'zip':
        assert ds[(0, 0)]['archive'] == ds[(1, 0)]['archive'] == str(root / 'images' / '12' / '345.zip')
        assert ds[(3, 0)]['member'] == '005.jpg' and ds[(3, 0)]['archive'].endswith('00/000.zip')
    for i, (uid, title, desc) in enumerate(SLIP_ROWS):
        out = decoded(ds, i, seed=i)
        assert_image(out, uid % 1000)
        assert out['caption'] in {title, desc} - {''}


def test_yfcc_caption_modes_are_seeded_per_sample(tmp_path):
    root = write_slip_yfcc(tmp_path, 'zip')
    ds = Yfcc15mDataset(data_root=str(root), ann_file='yfcc15m.pkl', pipeline=LOAD)
    captions = [ds[(0, seed)]['caption'] for seed in range(40)]
    assert set(captions) == {'red star', 'a small red star above a ring'}  # both drawn, uniformly-ish
    assert 8 <= captions.count('red star') <= 32
    assert [ds[(0, seed)]['caption'] for seed in range(40)] == captions  # the seed decides
    assert {ds[(2, seed)]['caption'] for seed in range(10)} == {'only a description'}  # an empty title is never drawn
    concat = Yfcc15mDataset(data_root=str(root), ann_file='yfcc15m.pkl', caption_mode='concat', pipeline=LOAD)
    assert concat[(0, 0)]['caption'] == 'red star a small red star above a ring'
    assert concat[(2, 0)]['caption'] == 'only a description'


HASH_ROWS = [(0, 'abcdef0123', 'title a', 'desc a'), (1, 'abc999ffff', 'title b', 'desc b'),
             (2, '0f1e2d3c4b', 'title c', 'desc c')]


@pytest.mark.parametrize('storage', ['zip', 'folder'])
def test_yfcc_detailclip_hash_layout(tmp_path, storage):
    """DetailCLIP: rows (index, hash, title, desc); member data/images/h[:3]/h[3:6]/h.jpg of <img_path>/h[:3].zip."""
    img_root = tmp_path / 'test_zip_3'
    for index, h, *_ in HASH_ROWS:
        member = f'data/images/{h[:3]}/{h[3:6]}/{h}.jpg'
        if storage == 'zip':
            img_root.mkdir(exist_ok=True)
            with zipfile.ZipFile(img_root / f'{h[:3]}.zip', 'a') as zf:
                zf.writestr(member, png_bytes(index))
        else:
            (img_root / member).parent.mkdir(parents=True, exist_ok=True)
            (img_root / member).write_bytes(png_bytes(index))
    with open(tmp_path / 'meta.pkl', 'wb') as f:
        pickle.dump(HASH_ROWS, f)
    ds = Yfcc15mDataset(data_root=str(tmp_path), ann_file='meta.pkl', layout='hash', storage=storage,
                        caption_mode='concat', data_prefix=dict(img_path='test_zip_3'), pipeline=LOAD)
    for index, h, title, desc in HASH_ROWS:
        out = decoded(ds, index)
        assert_image(out, index)
        assert out['caption'] == f'{title} {desc}'


def test_yfcc_wrong_layout_names_the_right_one(tmp_path):
    write_slip_yfcc(tmp_path, 'zip')
    with pytest.raises(ValueError, match="3 fields.*layout='slip'"):
        Yfcc15mDataset(data_root=str(tmp_path), ann_file='yfcc15m.pkl', layout='hash')
    with pytest.raises(ValueError, match='storage'):
        Yfcc15mDataset(data_root=str(tmp_path), ann_file='yfcc15m.pkl', storage='tar')


def test_yfcc_missing_member_and_archive_are_skipped(tmp_path):
    root = write_slip_yfcc(tmp_path, 'zip')
    rows = SLIP_ROWS + [(12345000, 'not in the zip', 'x'), (55500000, 'no such archive', 'y')]
    with open(root / 'yfcc15m.pkl', 'wb') as f:
        pickle.dump(rows, f)
    ds = Yfcc15mDataset(data_root=str(root), ann_file='yfcc15m.pkl', pipeline=LOAD)
    assert ds.prepare_data(4) is None and ds.prepare_data(5) is None
    assert ds.skipped == Counter(missing_member=1, missing_archive=1)


# ------------------------------------------------------------------------------------------------- CC3M / CC12M
CC_CAPTIONS = ['a dog on a beach', 'an old red car', 'sunset over the sea', 'a bowl of soup', 'two cats']


def write_tsv(path: Path, rows):
    with open(path, 'w', newline='', encoding='utf-8') as f:
        csv.writer(f, delimiter='\t', quoting=csv.QUOTE_NONE, quotechar=None).writerows(rows)


def img2dataset_path(i: int, per_shard: int) -> str:
    """Where img2dataset's `files` output puts row i (compute_key with oom_shard_count=5)."""
    shard, k = divmod(i, per_shard)
    digits = len(str(per_shard - 1))
    return f'{shard:05d}/{shard:05d}{k:0{digits}d}.jpg'


@pytest.mark.parametrize('per_shard', [2, 10000])
def test_cc3m_tsv_with_img2dataset_layout(tmp_path, per_shard):
    write_tsv(tmp_path / 'Train_GCC-training.tsv', [(c, f'http://x/{i}.jpg') for i, c in enumerate(CC_CAPTIONS)])
    for i in range(len(CC_CAPTIONS)):
        if i == 3:
            continue  # a failed download
        path = tmp_path / 'images' / img2dataset_path(i, per_shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(i))
    ds = ConceptualCaptionsDataset(ann_file='Train_GCC-training.tsv', data_root=str(tmp_path),
                                   data_prefix=dict(img_path='images'), samples_per_shard=per_shard, pipeline=LOAD)
    assert len(ds) == len(CC_CAPTIONS)
    if per_shard == 10000:
        assert ds.get_data_info(0)['img_path'].endswith('images/00000/000000000.jpg')
    else:
        assert ds.get_data_info(3)['img_path'].endswith('images/00001/000011.jpg')
    for i in (0, 1, 2, 4):
        out = decoded(ds, i)
        assert_image(out, i)
        assert out['caption'] == CC_CAPTIONS[i]
    assert ds.prepare_data(3) is None and ds.skipped == Counter(missing_file=1)


def test_cc12m_columns_and_bad_rows(tmp_path):
    """CC12M's url<TAB>caption; bad rows dropped at load and counted; quotes in captions are plain characters."""
    (tmp_path / 'cc12m.tsv').write_bytes(b'http://x/0.jpg\ta "quoted" caption\n'
                                         b'http://x/1.jpg\t   \n'
                                         b'http://x/2.jpg\ttwo\tcaptions\n'
                                         b'http://x/3.jpg\tfine\n'
                                         b'http://x/4.jpg\tcaf\xe9 latin-1\n')  # not UTF-8
    ds = ConceptualCaptionsDataset(ann_file='cc12m.tsv', data_root=str(tmp_path), columns=('url', 'caption'),
                                   samples_per_shard=10)
    assert [ds.get_data_info(i)['caption'] for i in range(len(ds))] == ['a "quoted" caption', 'fine']
    assert ds.get_data_info(1)['img_path'].endswith('00000/000003.jpg')  # row numbers count dropped rows
    assert ds.skipped == Counter(empty_caption=1, malformed_row=1, undecodable_caption=1)


def test_cc_tsv_with_header_and_path_column(tmp_path):
    rows = [('filepath', 'caption'), ('a/0.jpg', CC_CAPTIONS[0]), ('b/1.jpg', CC_CAPTIONS[1])]
    write_tsv(tmp_path / 'cc3m.tsv', rows)
    for i, rel in enumerate(['a/0.jpg', 'b/1.jpg']):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(png_bytes(i))
    ds = ConceptualCaptionsDataset(ann_file='cc3m.tsv', data_root=str(tmp_path), columns=None, layout='column',
                                   pipeline=LOAD)
    assert_image(decoded(ds, 1), 1)
    with pytest.raises(KeyError, match='url'):
        ConceptualCaptionsDataset(ann_file='cc3m.tsv', data_root=str(tmp_path), columns=None, layout='column',
                                  img_key='url')


# ------------------------------------------------------------------------------------------------- COCO captions
def test_coco_captions(tmp_path):
    images = [dict(id=9, file_name='000000000009.jpg'), dict(id=25, file_name='000000000025.jpg'),
              dict(id=30, file_name='000000000030.jpg')]
    anns = [dict(id=1, image_id=9, caption='a plate of food'), dict(id=2, image_id=25, caption='a giraffe '),
            dict(id=3, image_id=9, caption='dinner on a table'), dict(id=4, image_id=9, caption='  ')]
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'captions_train2017.json').write_text(json.dumps(dict(images=images, annotations=anns)))
    for img in images:
        (tmp_path / 'train2017').mkdir(exist_ok=True)
        (tmp_path / 'train2017' / img['file_name']).write_bytes(png_bytes(img['id']))
    ds = CocoCaptionsDataset(ann_file='annotations/captions_train2017.json', data_root=str(tmp_path), pipeline=LOAD)
    assert len(ds) == 2  # image 30 has no caption
    drawn = {ds[(0, seed)]['caption'] for seed in range(30)}
    assert drawn == {'a plate of food', 'dinner on a table'}  # the blank caption is never drawn
    out = decoded(ds, 1)
    assert_image(out, 25)
    assert out['caption'] == 'a giraffe'
    assert ds[(0, 5)]['caption'] == ds[(0, 5)]['caption']


def test_annotation_files_with_a_byte_order_mark(tmp_path):
    bom = b'\xef\xbb\xbf'
    (tmp_path / 'cc3m.tsv').write_bytes(bom + b'filepath\tcaption\na/0.jpg\ta dog\n')
    ds = ConceptualCaptionsDataset(ann_file='cc3m.tsv', data_root=str(tmp_path), columns=None, layout='column')
    assert ds.get_data_info(0)['caption'] == 'a dog'
    coco = dict(images=[dict(id=1, file_name='1.jpg')], annotations=[dict(id=1, image_id=1, caption='a cat')])
    (tmp_path / 'captions.json').write_bytes(bom + json.dumps(coco).encode())
    assert len(CocoCaptionsDataset(ann_file='captions.json', data_root=str(tmp_path))) == 1


def test_pick_caption_rejects_unknown_mode():
    with pytest.raises(ValueError, match='caption_mode'):
        pick_caption(['a'], 'first')


# ----------------------------------------------------------------------------------------- CSV and decode count
def test_csv_with_a_non_utf8_caption_loads(tmp_path):
    (tmp_path / 'a.png').write_bytes(png_bytes(0))
    (tmp_path / 'train.csv').write_bytes(b'filepath,title\na.png,fine\na.png,caf\xe9\na.png,\n')
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path))
    assert len(ds) == 1 and ds.skipped == Counter(undecodable_caption=1, empty_caption=1)


def test_image_is_decoded_once_for_all_views(tmp_path, monkeypatch):
    root = write_slip_yfcc(tmp_path, 'zip')
    calls = []
    real_open = loading.Image.open
    monkeypatch.setattr(loading.Image, 'open', lambda *a, **k: calls.append(1) or real_open(*a, **k))
    crop = dict(type='RandomResizedCrop', size=8, antialias=True)
    pipeline = [dict(type='LoadImageRGB'), dict(type='MultiView', views=[[crop], [crop], [crop]], num_repeats=2),
                dict(type='PackImageText')]
    ds = Yfcc15mDataset(data_root=str(root), ann_file='yfcc15m.pkl', pipeline=pipeline)
    views = ds[(0, 0)]['inputs']['views']
    assert len(views) == 6 and all(v.shape == (3, 8, 8) for v in views)
    assert len(calls) == 1
    assert not all(torch.equal(views[0], v) for v in views[1:])


@pytest.mark.parametrize('name', ['yfcc15m_slip', 'yfcc15m_detailclip', 'webdataset_yfcc15m', 'cc3m', 'cc12m',
                                  'coco_captions'])
def test_format_base_configs(name):
    """Each base config names a registered dataset with arguments it takes, persistent single-thread workers, and a
    sampler exactly when the dataset is map-style."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
    loader = cfg.train_dataloader
    kwargs = loader.dataset.to_dict()
    cls = DATASETS.get(kwargs.pop('type'))
    inspect.signature(cls).bind(**kwargs)
    assert kwargs['pipeline'] == cfg.train_pipeline or kwargs['pipeline'] == cfg.two_view_pipeline
    assert loader.persistent_workers and loader.worker_init_fn.type == 'detailclip.worker_init_fn'
    assert (loader.sampler is None) == (cls is WebImageTextDataset)


@pytest.mark.parametrize('fields', [('a title', ''), ('', 'a description'), (' a title ', None), ('a title', 'words')])
def test_caption_policies_skip_empty_fields(fields):
    """Q-D14: ``concat`` joins the usable fields with one space (none stray), a random draw picks among them only."""
    usable = [f.strip() for f in fields if f and f.strip()]
    assert pick_caption(fields, 'concat') == ' '.join(usable)
    torch.manual_seed(0)
    assert {pick_caption(fields, 'random_title_or_desc') for _ in range(30)} == set(usable)
