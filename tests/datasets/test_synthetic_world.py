import csv
import json
import re
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detailclip.datasets import synthetic_world as sw
from detailclip.testing import run_gloo

TINY = dict(image_size=64, num_train=12, num_retrieval=6, num_cls_train_per_class=2, num_cls_val_per_class=1,
            num_seg_train=4, num_seg_val=3, num_det_train=6, num_det_val=3)


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def world(tmp_path_factory) -> Path:
    return sw.generate_world(tmp_path_factory.mktemp('sw') / 'world', seed=3, progress=False, **TINY)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, world):
    again = sw.generate_world(tmp_path / 'again', seed=3, progress=False, **TINY)
    other = sw.generate_world(tmp_path / 'other', seed=4, progress=False, **TINY)
    reference = _files(world)
    assert _files(again) == reference
    other_files = _files(other)
    assert other_files.keys() == reference.keys()
    assert sum(other_files[k] != v for k, v in reference.items()) > len(reference) // 2
    assert not list(tmp_path.glob('*.tmp-*')), 'the temporary folder must be renamed into place'


def test_meta_and_zero_shot(world):
    meta = json.loads((world / 'meta.json').read_text())
    assert meta['seed'] == 3 and meta['image_size'] == 64 and meta['version'] == 1
    assert meta['splits'] == {
        'pretrain': 12, 'retrieval': 6, 'classification_train': 2 * len(sw.SHAPES),
        'classification_val': len(sw.SHAPES), 'ade_train': 4, 'ade_val': 3, 'coco_train': 6, 'coco_val': 3}
    zero_shot = json.loads((world / 'zero_shot.json').read_text())
    assert zero_shot['classes'] == list(sw.SHAPES) and len(zero_shot['templates']) >= 6
    assert all('{}' in t for t in zero_shot['templates'])


def test_pretrain_csv_matches_scenes(world):
    with open(world / 'pretrain' / 'train.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    for index, row in enumerate(rows):
        image = Image.open(world / 'pretrain' / row['filepath'])
        assert image.format == 'JPEG' and image.size == (64, 64)
        _, scene, (caption, ) = sw.make_caption_sample(3, 'pretrain', index, 64)
        assert row['title'] == caption
        _assert_caption_names(caption, scene)


def _assert_caption_names(caption: str, scene: sw.Scene) -> None:
    """Every object's shape is named with its own colour or without one, and nothing else is named."""
    words = re.findall(r'[a-z]+', caption)
    assert sorted(w for w in words if w in sw.SHAPES) == sorted(o.shape for o in scene.objects), caption
    named = Counter(w for w in words if w in sw.COLOURS)
    assert not named - Counter(o.colour for o in scene.objects), caption
    for obj in scene.objects:
        own = rf'\b{obj.colour} {obj.shape}\b|\b{obj.shape} in {obj.colour}\b'
        colourless = rf'\b(a|an|small|large) {obj.shape}\b(?! in ({"|".join(sw.COLOURS)})\b)'
        assert re.search(own, caption) or re.search(colourless, caption), caption


@pytest.mark.parametrize('index', range(40))
def test_captions_describe_the_drawn_objects(index):
    image, scene, captions = sw.make_caption_sample(0, 'retrieval', index, 128, num_captions=2)
    assert 1 <= len(scene.objects) <= 3 and captions[0] != captions[1]
    for caption in captions:
        _assert_caption_names(caption, scene)
    pixels, masks = sw.render_scene(scene)
    assert np.array_equal(np.asarray(image), pixels)
    for obj, mask in zip(scene.objects, masks):
        assert mask.any()
        expected = np.clip(np.add(sw.COLOURS[obj.colour], obj.tint), 0, 255)
        assert (pixels[mask] == expected).all(), 'captioned objects must not overlap'


def _obj(cx, cy):
    return sw.SceneObject('star', 'red', 'small', cx, cy, 5.0, 0.0)


@pytest.mark.parametrize('a, b, expected', [
    ((50, 10), (52, 90), 'above'), ((50, 90), (45, 10), 'below'), ((10, 50), (90, 55), 'to the left of'),
    ((90, 50), (10, 40), 'to the right of'), ((10, 10), (60, 60), 'next to')])
def test_relation_follows_positions(a, b, expected):
    assert sw.relation(_obj(*a), _obj(*b)) == expected


def test_sizes_are_small_and_large():
    """Caption scenes draw both sizes in their ranges; the single-object split draws large objects only."""
    radii = {'small': [], 'large': []}
    for index in range(30):
        _, scene, _ = sw.make_caption_sample(0, 'pretrain', index, 128)
        for obj in scene.objects:
            radii[obj.size].append(2 * obj.radius / 128)
    assert 0.10 <= min(radii['small']) and max(radii['small']) <= 0.15
    assert 0.30 <= min(radii['large']) and max(radii['large']) <= 0.45
    for index in range(16):
        _, scene = sw.make_class_sample(0, 'classification_train', index % len(sw.SHAPES), index, 128)
        assert scene.objects[0].size == 'large'


def test_karpathy_json(world):
    data = json.loads((world / 'retrieval' / 'karpathy.json').read_text())
    assert data['dataset'] == 'synthetic_world' and len(data['images']) == 6
    sentids = []
    for i, entry in enumerate(data['images']):
        assert entry['imgid'] == i and entry['split'] == 'test' and entry['filepath'] == 'images'
        assert (world / 'retrieval' / entry['filepath'] / entry['filename']).is_file()
        assert len(entry['sentences']) == 2 and entry['sentences'][0]['raw'] != entry['sentences'][1]['raw']
        assert [s['sentid'] for s in entry['sentences']] == entry['sentids']
        assert all(s['imgid'] == i and s['tokens'] for s in entry['sentences'])
        sentids += entry['sentids']
    assert len(set(sentids)) == len(sentids)


def test_classification_folders(world):
    for split, per_class in (('train', 2), ('val', 1)):
        folder = world / 'classification' / split
        assert sorted(p.name for p in folder.iterdir()) == sorted(sw.SHAPES)
        assert all(len(list((folder / name).glob('*.jpg'))) == per_class for name in sw.SHAPES)


def test_class_sample_shape_is_its_class():
    for class_index, name in enumerate(sw.SHAPES):
        _, scene = sw.make_class_sample(1, 'classification_val', class_index, 0, 64)
        assert [o.shape for o in scene.objects] == [name]


def test_ade_annotations(world):
    for folder, count in (('training', 4), ('validation', 3)):
        images = sorted((world / 'ade' / 'images' / folder).glob('*.jpg'))
        labels = sorted((world / 'ade' / 'annotations' / folder).glob('*.png'))
        assert len(images) == len(labels) == count and [p.stem for p in images] == [p.stem for p in labels]
        for path in labels:
            label = Image.open(path)
            assert label.mode == 'L' and label.size == (64, 64)
            values = np.unique(np.asarray(label))
            assert values.min() >= 0 and values.max() <= len(sw.SHAPES) and len(values) > 1


def test_dense_samples_handle_occlusion_and_include_small_objects():
    small = 0
    for index in range(30):
        _, labels, instances = sw.make_dense_sample(0, 'coco_train', index, 128)
        union = np.zeros_like(labels, dtype=bool)
        for shape_index, visible in reversed(instances):  # front to back: visible parts must not overlap
            assert not (visible & union).any()
            assert (labels[visible] == shape_index + 1).all()
            union |= visible
        small += sum(int(mask.sum()) < (0.15 * 128) ** 2 for _, mask in instances)
    assert small >= 10


def test_visible_masks_front_wins():
    back, front = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    back[:3, :3], front[1:, 1:] = True, True
    visible_back, visible_front = sw.visible_masks([back, front])
    assert np.array_equal(visible_front, front) and visible_back.sum() == 9 - 4


def test_coco_json_loads_with_pycocotools(world):
    from pycocotools.coco import COCO
    for folder, count in (('train2017', 6), ('val2017', 3)):
        coco = COCO(str(world / 'coco' / 'annotations' / f'instances_{folder}.json'))
        assert len(coco.getImgIds()) == count and len(coco.getAnnIds()) >= count
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(sw.SHAPES)
        for image in coco.loadImgs(coco.getImgIds()):
            assert (world / 'coco' / folder / image['file_name']).is_file()
        for ann in coco.loadAnns(coco.getAnnIds()):
            mask = coco.annToMask(ann)
            x, y, w, h = (int(v) for v in ann['bbox'])
            assert mask.sum() == ann['area'] > 0 and ann['iscrowd'] == 0
            assert mask[y:y + h, x:x + w].sum() == mask.sum(), 'mask must lie inside its box'
            rows, cols = np.nonzero(mask)
            assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x, y, x + w, y + h)


@pytest.mark.parametrize('shape', [(1, 1), (7, 5), (40, 33)])
def test_rle_encode_matches_pycocotools(shape):
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for fill in (0.0, 0.3, 0.9, 1.0):
        mask = rng.uniform(size=shape) < fill
        expected = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert sw.rle_encode(mask) == {'size': list(shape), 'counts': expected['counts'].decode()}


@pytest.mark.parametrize('kwargs', [dict(image_size=16), dict(image_size=64.0), dict(num_train=-1),
                                    dict(num_cls_val_per_class=-2)])
def test_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        sw.generate_world(tmp_path / 'w', progress=False, **{**TINY, **kwargs})
    assert not list(tmp_path.iterdir())


def test_existing_output_is_not_replaced_unless_asked(tmp_path):
    out = tmp_path / 'w'
    out.mkdir()
    (out / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError):
        sw.generate_world(out, progress=False, **TINY)
    assert (out / 'keep.txt').exists()
    sw.generate_world(out, progress=False, overwrite=True, **TINY)
    assert (out / 'meta.json').exists() and not (out / 'keep.txt').exists()


def test_failure_leaves_no_half_world(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError('disk full')

    monkeypatch.setattr(sw, '_write_coco', fail)
    with pytest.raises(RuntimeError, match='disk full'):
        sw.generate_world(tmp_path / 'w', progress=False, **TINY)
    assert not list(tmp_path.iterdir())


def test_ensure_world_keeps_an_existing_world(tmp_path):
    (tmp_path / 'meta.json').write_text('{}')
    assert sw.ensure_world(tmp_path, **TINY) == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == ['meta.json']


def test_ensure_world_generates_when_missing(tmp_path):
    root = sw.ensure_world(tmp_path / 'w', progress=False, **TINY)
    assert json.loads((root / 'meta.json').read_text())['splits']['pretrain'] == TINY['num_train']


def _ensure_worker(rank: int, root: str, log: str) -> None:
    generate = sw.generate_world

    def counted(*args, **kwargs):  # records which rank generated, in this process only
        with open(log, 'a') as f:
            f.write(f'{rank}\n')
        return generate(*args, **kwargs)

    sw.generate_world = counted
    for _ in range(2):  # the second call finds the world and must not generate again
        assert sw.ensure_world(root, progress=False, **TINY) == Path(root)
        assert (Path(root) / 'meta.json').exists()


@pytest.mark.dist
def test_ensure_world_only_rank0_generates(tmp_path):
    log = tmp_path / 'generated.log'
    run_gloo(partial(_ensure_worker, root=str(tmp_path / 'w'), log=str(log)), 2, str(tmp_path))
    assert log.read_text().split() == ['0']
