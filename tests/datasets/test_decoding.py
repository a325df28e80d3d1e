"""Decoding on real files written to tmp_path: EXIF orientation on every reader that decodes, and large JPEGs decoded
at the reduced size their views need (draft mode) with the same views, within a stated resampling tolerance."""
import io
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from detailclip.datasets import CsvImageTextDataset, LoadImageRGB, WebImageTextDataset
from detailclip.datasets.transforms import crop_source_side
from detailclip.evaluation.dense_probe import read_seg_split
from detailclip.testing import ROOT

ORIENTATION = 0x0112
# Transpose that turns an image stored with EXIF orientation k upright (the EXIF specification; ImageOps' table).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
INVERSE = {Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270}


@pytest.fixture(autouse=True)
def detailclip_scope():
    init_default_scope('detailclip')


def quadrants(width: int = 64, height: int = 40) -> Image.Image:
    """Four flat colours, one per quadrant: any flip or rotation changes most pixels."""
    img = Image.new('RGB', (width, height), (230, 20, 20))
    img.paste((20, 200, 20), (width // 2, 0, width, height // 2))
    img.paste((20, 20, 230), (0, height // 2, width // 2, height))
    img.paste((240, 240, 30), (width // 2, height // 2, width, height))
    return img


def stored_sideways(upright: Image.Image, orientation: int) -> bytes:
    """A JPEG whose pixels are stored as a camera held ``orientation`` would store them, with the EXIF tag."""
    step = UPRIGHT.get(orientation)
    stored = upright if step is None else upright.transpose(INVERSE.get(step, step))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    stored.save(buf, 'JPEG', quality=95, exif=exif.tobytes())
    return buf.getvalue()


def assert_upright(img: Image.Image, upright: Image.Image):
    assert img.size == upright.size
    diff = np.abs(np.asarray(img, np.int16) - np.asarray(upright, np.int16))
    assert diff.mean() < 4, diff.mean()  # JPEG loss only; a wrong transpose is off by ~100 on average


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_is_applied_by_every_reader(tmp_path, orientation):
    upright = quadrants()
    data = stored_sideways(upright, orientation)
    assert Image.open(io.BytesIO(data)).getexif()[ORIENTATION] == orientation

    (tmp_path / 'photo.jpg').write_bytes(data)  # a file dataset
    (tmp_path / 'train.csv').write_text('filepath,title\nphoto.jpg,a photo\n')
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=str(tmp_path), pipeline=[dict(type='LoadImageRGB')])
    assert_upright(ds[0]['img'], upright)

    with tarfile.open(tmp_path / 'shard.tar', 'w') as tar:  # a webdataset shard
        for name, content in (('photo.jpg', data), ('photo.txt', b'a photo')):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    stream = WebImageTextDataset(str(tmp_path / 'shard.tar'), epoch_size=1, pipeline=[dict(type='LoadImageRGB')],
                                 resampled=False, shuffle_buffer=1, shuffle_initial=1)
    assert_upright(next(iter(stream))['img'], upright)

    images, labels = tmp_path / 'ade' / 'images' / 'training', tmp_path / 'ade' / 'annotations' / 'training'
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    (images / 'photo.jpg').write_bytes(data)  # the dense probe's reader
    Image.new('L', upright.size).save(labels / 'photo.png')
    pixels = read_seg_split(tmp_path, 'train').images[0]
    assert_upright(Image.fromarray(pixels.permute(1, 2, 0).numpy()), upright)


def textured_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A photo-like JPEG: smooth noise at four scales (features from 1/4 of the image down to 8 pixels)."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width, 3), np.float32)
    for cells, amp in ((4, 70), (16, 45), (64, 30), (256, 20)):
        for colour in (np.array([1.0, 0.6, 0.3]), np.array([0.2, 0.7, 1.0])):
            small = rng.uniform(-1, 1, (cells * height // width + 1, cells)).astype(np.float32)
            acc += amp * np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC))[..., None] * colour
    buf = io.BytesIO()
    Image.fromarray(np.clip(acc + 128, 0, 255).astype(np.uint8)).save(buf, 'JPEG', quality=90)
    return buf.getvalue()


def load(data: bytes, decode_side) -> Image.Image:
    loader = LoadImageRGB()
    loader.decode_side = decode_side
    return loader(dict(img_bytes=data))['img']


ROOT_CSV = str(Path(ROOT) / 'nonexistent')  # lazy_init: the annotations are never read


def decode_side_of(pipeline: list):
    """The ``decode_side`` a dataset gives the LoadImageRGB that starts ``pipeline``."""
    dataset = CsvImageTextDataset(ann_file='train.csv', data_root=ROOT_CSV, pipeline=pipeline, lazy_init=True)
    return dataset.pipeline.transforms[0].decode_side


def test_decode_side_comes_from_the_views_of_the_pipeline_config():
    cfg = Config.fromfile(str(Path(ROOT) / 'configs/_base_/datasets/synthetic_world.py'))
    crop, local = cfg.crop_size, cfg.local_size

    def side(size, low):
        return math.ceil(crop_source_side(size, (low, 1.0), (3 / 4, 4 / 3)))

    expected = dict(train_pipeline=side(crop, 0.5), two_view_pipeline=side(crop, 0.14),
                    slip_pipeline=side(crop, 0.08), aclip_pipeline=side(crop, 0.5), mae_pipeline=side(crop, 0.2),
                    multicrop_pipeline=max(side(crop, 0.4), side(local, 0.05)), zero_shot_pipeline=crop)
    for name, value in expected.items():
        assert decode_side_of(cfg[name]) == value, name
    assert side(224, 0.08) == 915 and side(224, 0.5) == 366  # SLIP's and CLIP's paper views
    # views of unknown geometry, or a loader not followed by views: decoded in full
    rotate = dict(type='MultiView', views=[[dict(type='RandomRotation', degrees=10), dict(type='CenterCrop', size=8)]])
    assert decode_side_of([dict(type='LoadImageRGB'), rotate]) is None
    assert decode_side_of([dict(type='LoadImageRGB'), dict(type='Tokenize'), cfg.train_pipeline[1]]) is None


def test_large_jpeg_is_decoded_reduced_with_the_same_eval_view():
    data = textured_jpeg(2048, 1536)
    size = 128
    view = dict(type='MultiView', views=[[dict(type='Resize', size=size, interpolation='bilinear', antialias=True),
                                          dict(type='CenterCrop', size=size)]])
    pipeline = [dict(type='LoadImageRGB'), view]
    ds = CsvImageTextDataset(ann_file='train.csv', data_root=ROOT_CSV, pipeline=pipeline, lazy_init=True)
    assert ds.pipeline.transforms[0].decode_side == size
    reduced = ds.pipeline(dict(img_bytes=data))
    assert reduced['img'].size == (256, 192)  # 1/8 of each side: the shorter side stays >= 128
    full = ds.pipeline.transforms[1](dict(img=load(data, None)))
    diff = (reduced['views'][0].float() - full['views'][0].float()).abs()
    # tolerance, in 8-bit grey levels: mean <= 1, max <= 8 (measured 0.5 and 3: resampling filters differ)
    assert diff.mean() <= 1 and diff.max() <= 8, (diff.mean(), diff.max())


def crop_errors(data: bytes, decode_side: int, size: int, scale: float, ratio: float, n: int = 12):
    """(mean, max) |difference| of views of ``n`` smallest crops (area ``scale``, aspect ``ratio`` or its inverse)
    cut from the image decoded at ``decode_side`` and the same boxes (in full-resolution pixels) of the full image."""
    full, reduced = load(data, None), load(data, decode_side)
    k = full.width // reduced.width
    gen = np.random.default_rng(0)
    errors = []
    for i in range(n):
        r = ratio if i % 2 else 1 / ratio
        w = round(math.sqrt(scale * reduced.width * reduced.height * r))
        h = round(math.sqrt(scale * reduced.width * reduced.height / r))
        top, left = gen.integers(0, reduced.height - h + 1), gen.integers(0, reduced.width - w + 1)
        views = [F.pil_to_tensor(F.resized_crop(img, top * m, left * m, h * m, w * m, [size, size],
                                                InterpolationMode.BICUBIC, antialias=True)).float()
                 for img, m in ((reduced, 1), (full, k))]
        diff = (views[0] - views[1]).abs()
        errors.append((diff.mean().item(), diff.max().item()))
    return np.max(errors, axis=0)


def test_random_resized_crops_of_a_reduced_decode_match_the_full_image():
    data = textured_jpeg(2048, 1536)
    size, scale, ratio = 128, 0.14, 3 / 4  # DetailCLIP's crop
    recipe = dict(type='MultiView', views=['detailclip'], size=size)
    decode_side = decode_side_of([dict(type='LoadImageRGB'), recipe])
    assert decode_side == math.ceil(size / math.sqrt(scale * ratio)) == 396
    assert load(data, decode_side).size == (1024, 768)
    # the smallest crops the recipe draws, from the reduced decode, match the full decode's: in 8-bit grey levels,
    # mean <= 0.5 and max <= 3 (measured 0.24 and 2)
    mean, peak = crop_errors(data, decode_side, size, scale, ratio)
    assert mean <= 0.5 and peak <= 3, (mean, peak)
    # decoding at half that side would upscale them: the same comparison fails the tolerance
    mean, peak = crop_errors(data, decode_side // 2, size, scale, ratio)
    assert mean > 0.5 or peak > 3, (mean, peak)
