"""A seeded synthetic image-text world, written to disk in the real data set formats.

Scenes are coloured shapes on muted, textured backgrounds. Captions describe them compositionally
("a small red star above a large blue ring"), so a CLIP model has to learn shape, colour, size and
relation words, and the dense splits contain small objects, so details matter (DetailCLIP, arXiv
2409.06809). Every split is written in the format of the real data set it stands in for, so the
real loaders are exercised end to end:

- ``pretrain/``: JPEGs plus an open_clip-style ``train.csv`` (``filepath,title``).
- ``zero_shot.json``: class names (= ``SHAPES``) and prompt templates.
- ``classification/{train,val}/<shape>/``: one object per image, the class is its shape.
- ``retrieval/``: JPEGs plus a Karpathy-style ``karpathy.json`` with two captions per image.
- ``ade/``: ADE20K layout; label PNGs hold 0 for background and ``k + 1`` for ``SHAPES[k]``
  (mmseg's ``reduce_zero_label=True`` convention).
- ``coco/``: COCO 2017 layout with instance JSON (boxes and RLE masks, categories from id 1).

Every image is drawn from its own generator seeded by ``(seed, split, index)``, so the output is
byte-identical across runs and an image does not change when the size of its split changes.
"""
from __future__ import annotations
import csv
import json
import os
import re
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from mmengine.dist import barrier, get_rank, get_world_size
from PIL import Image, ImageDraw
from tqdm import tqdm

__all__ = [
    'SHAPES', 'COLOURS', 'SIZES', 'ZERO_SHOT_TEMPLATES', 'SceneObject', 'Scene', 'sample_scene', 'render_scene',
    'visible_masks', 'caption_scene', 'make_caption_sample', 'make_class_sample', 'make_dense_sample',
    'rle_encode', 'generate_world', 'ensure_world'
]

VERSION = 1
SHAPES = ('circle', 'square', 'triangle', 'star', 'ring', 'cross', 'diamond', 'hexagon')
# Saturated colours, far from the muted (low-saturation) backgrounds.
COLOURS = {
    'red': (220, 35, 35),
    'green': (30, 170, 60),
    'blue': (35, 75, 225),
    'yellow': (245, 215, 30),
    'purple': (150, 45, 205),
    'orange': (250, 135, 20),
}
# Object diameter as a fraction of the image side.
SIZES = {'small': (0.10, 0.15), 'large': (0.30, 0.45)}
ZERO_SHOT_TEMPLATES = (
    'a photo of a {}.',
    'a {} shape.',
    'an image of a {}.',
    'a picture of a {}.',
    'a drawing of a {}.',
    'a {} on a textured background.',
)
JPEG_QUALITY = 95
MAX_ROTATION = 20.0  # degrees; larger turns would make a square look like a diamond
MIN_VISIBLE_FRACTION = 0.2  # dense splits drop instances hidden more than this
MIN_VISIBLE_PIXELS = 6
CLASSIFICATION_DIR = 'classification'  # <root>/classification/{train,val}/<shape>/

_SPLIT_NAMES = ('pretrain', 'retrieval', 'classification_train', 'classification_val', 'ade_train', 'ade_val',
                'coco_train', 'coco_val')


@dataclass(frozen=True)
class SceneObject:
    """One shape in a scene, in pixel coordinates.

    Attributes:
        shape: An entry of ``SHAPES``.
        colour: A key of ``COLOURS``.
        size: A key of ``SIZES``.
        cx: Centre column.
        cy: Centre row.
        radius: Half the object's extent.
        angle: Rotation in degrees.
        tint: Per-channel colour jitter added to the palette colour.
    """

    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    angle: float
    tint: tuple = (0, 0, 0)


@dataclass(frozen=True)
class Scene:
    """A background (its texture seed) and the objects drawn on it, back to front."""

    image_size: int
    background_seed: int
    objects: tuple


# ----------------------------------------------------------------------------------------------- sampling


def _rng(seed: int, split: str, *index: int) -> np.random.Generator:
    """A generator that depends only on the seed, the split name and the index (never on run order)."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), *index])


def _choice(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def sample_object(rng: np.random.Generator, image_size: int, shape: Optional[str] = None,
                  size: Optional[str] = None) -> SceneObject:
    """Samples one object that lies fully inside the image."""
    shape = shape or _choice(rng, SHAPES)
    size = size or _choice(rng, tuple(SIZES))
    radius = image_size * rng.uniform(*SIZES[size]) / 2
    cx, cy = rng.uniform(radius + 1, image_size - radius - 1, size=2)
    tint = tuple(int(t) for t in rng.integers(-15, 16, size=3))
    return SceneObject(shape, _choice(rng, tuple(COLOURS)), size, float(cx), float(cy), float(radius),
                       float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)), tint)


def _overlaps(obj: SceneObject, others: Sequence[SceneObject]) -> bool:
    return any(np.hypot(obj.cx - o.cx, obj.cy - o.cy) < obj.radius + o.radius + 2 for o in others)


def sample_scene(rng: np.random.Generator, image_size: int, num_objects: int, allow_overlap: bool = False,
                 shapes: Optional[Sequence[str]] = None) -> Scene:
    """Samples a scene with up to ``num_objects`` objects.

    Args:
        rng: Source of randomness.
        image_size: Side of the square image in pixels.
        num_objects: Objects to place. Without overlap, an object that finds no free spot after a few
            tries is left out, so the scene may hold fewer.
        allow_overlap: Let objects occlude each other (dense splits). Captioned scenes keep objects
            apart so that every word of the caption is visible.
        shapes: Force the shape of each object (length ``num_objects``).

    Returns:
        The scene; objects are listed back to front.
    """
    objects = []
    for i in range(num_objects):
        for _ in range(1 if allow_overlap else 30):
            obj = sample_object(rng, image_size, shape=shapes[i] if shapes else None)
            if allow_overlap or not _overlaps(obj, objects):
                objects.append(obj)
                break
    return Scene(image_size, int(rng.integers(2**31)), tuple(objects))


# ---------------------------------------------------------------------------------------------- rendering


def _regular_polygon(n: int, radius: float, phase: float) -> np.ndarray:
    angles = np.deg2rad(phase + 360.0 * np.arange(n) / n)
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(radius: float) -> np.ndarray:
    outer = _regular_polygon(5, radius, -90)
    inner = _regular_polygon(5, 0.45 * radius, -54)
    return np.stack([outer, inner], axis=1).reshape(-1, 2)


def _cross(radius: float) -> np.ndarray:
    a, r = 0.3 * radius, radius
    return np.array([(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r), (-a, a), (-r, a),
                     (-r, -a), (-a, -a)])


def _shape_outline(shape: str, radius: float) -> np.ndarray:
    """Polygon vertices (V, 2) of an unrotated polygonal shape centred at the origin."""
    if shape == 'square':
        return _regular_polygon(4, 1.15 * radius, 45)  # 1.15: similar area to the other shapes
    if shape == 'triangle':
        return _regular_polygon(3, radius, -90) + (0, 0.2 * radius)  # centre the bounding box
    if shape == 'star':
        return _star(radius)
    if shape == 'cross':
        return _cross(radius)
    if shape == 'diamond':
        return np.array([(0, -radius), (0.6 * radius, 0), (0, radius), (-0.6 * radius, 0)])
    if shape == 'hexagon':
        return _regular_polygon(6, radius, 0)
    raise ValueError(f'unknown shape {shape!r}')


def _draw_mask(obj: SceneObject, image_size: int) -> np.ndarray:
    """Rasterises one object into a boolean mask (H, W)."""
    canvas = Image.new('L', (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    box = (obj.cx - obj.radius, obj.cy - obj.radius, obj.cx + obj.radius, obj.cy + obj.radius)
    if obj.shape == 'circle':
        draw.ellipse(box, fill=255)
    elif obj.shape == 'ring':
        draw.ellipse(box, outline=255, width=max(2, round(0.35 * obj.radius)))
    else:
        theta = np.deg2rad(obj.angle)
        rotation = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
        points = _shape_outline(obj.shape, obj.radius) @ rotation + (obj.cx, obj.cy)
        draw.polygon([tuple(p) for p in points.tolist()], fill=255)
    return np.asarray(canvas) > 0


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation colour: a grey level plus a small tint."""
    return rng.uniform(70, 180) + rng.uniform(-22, 22, size=3)


def _texture(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """A pattern in [0, 1] of shape (H, W): smooth noise, stripes or a gradient."""
    kind = int(rng.integers(3))
    if kind == 0:
        cells = int(rng.integers(3, 9))
        coarse = Image.fromarray(rng.uniform(0, 255, size=(cells, cells)).astype(np.uint8))
        return np.asarray(coarse.resize((image_size, image_size), Image.BICUBIC), dtype=np.float32) / 255
    ys, xs = np.mgrid[0:image_size, 0:image_size].astype(np.float32) / image_size
    theta = rng.uniform(0, np.pi)
    along = xs * np.cos(theta) + ys * np.sin(theta)
    if kind == 1:
        return 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 8) * along + rng.uniform(0, 2 * np.pi))
    return (along - along.min()) / (along.max() - along.min())


def render_background(seed: int, image_size: int) -> np.ndarray:
    """Renders a muted textured background (H, W, 3) float32 from its seed."""
    rng = np.random.default_rng(seed)
    low, high = _muted_colour(rng), _muted_colour(rng)
    pattern = _texture(rng, image_size)[..., None]
    grain = rng.normal(0, 4, size=(image_size, image_size, 1))  # film grain so JPEGs are not flat
    return low + (high - low) * pattern + grain


def render_scene(scene: Scene) -> tuple[np.ndarray, list]:
    """Draws a scene.

    Args:
        scene: The scene to draw.

    Returns:
        The image (H, W, 3) uint8 and the full (unoccluded) boolean mask (H, W) of every object,
        in the order of ``scene.objects``.
    """
    image = render_background(scene.background_seed, scene.image_size)
    masks = [_draw_mask(obj, scene.image_size) for obj in scene.objects]
    for obj, mask in zip(scene.objects, masks):
        image[mask] = np.add(COLOURS[obj.colour], obj.tint)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), masks


def visible_masks(masks: Sequence[np.ndarray]) -> list:
    """Removes from each mask (H, W) the pixels covered by any later (front) mask."""
    visible, covered = [], np.zeros_like(masks[0]) if masks else None
    for mask in reversed(masks):
        visible.append(mask & ~covered)
        covered = covered | mask
    return visible[::-1]


# ----------------------------------------------------------------------------------------------- captions


def _article(word: str) -> str:
    return 'an' if word[0] in 'aeiou' else 'a'


def describe_object(obj: SceneObject, rng: np.random.Generator) -> str:
    """A noun phrase naming the object's shape, usually its colour, sometimes its size ("a small red star").

    A third of the phrases leave the colour out ("a large star"): colour alone would then no longer tell captions
    apart, so a contrastive model has to learn shapes, which the zero-shot split tests.
    """
    form = rng.uniform()
    if form < 0.1:
        return f'{_article(obj.shape)} {obj.shape} in {obj.colour}'
    if form < 0.45:
        words = [obj.size, obj.colour]
    elif form < 0.7:
        words = [obj.colour]
    elif form < 0.85:
        words = [obj.size]
    else:
        words = []
    words.append(obj.shape)
    return f'{_article(words[0])} {" ".join(words)}'


def relation(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is relative to ``b``; "next to" when neither axis clearly dominates."""
    dx, dy = b.cx - a.cx, b.cy - a.cy
    if abs(dy) >= 1.5 * abs(dx):
        return 'above' if dy > 0 else 'below'
    if abs(dx) >= 1.5 * abs(dy):
        return 'to the left of' if dx > 0 else 'to the right of'
    return 'next to'


def region(obj: SceneObject, image_size: int) -> str:
    """Where the object sits in the image, e.g. "in the top left corner"."""
    row = ('top', None, 'bottom')[min(int(3 * obj.cy / image_size), 2)]
    col = ('left', None, 'right')[min(int(3 * obj.cx / image_size), 2)]
    if row and col:
        return f'in the {row} {col} corner'
    if row or col:
        return f'{"at" if row else "on"} the {row or col}'
    return 'in the centre'


_ONE = ('{0}', 'a photo of {0}', 'an image of {0}.', '{0} on a textured background', '{0} {r}',
        'there is {0} in this picture')
_TWO = ('{0} {rel} {1}', '{0} and {1}', 'two objects: {0} and {1}', 'a photo of {0} {rel} {1}',
        'there is {0} {rel} {1}')
_THREE = ('{0}, {1} and {2}', 'three objects: {0}, {1} and {2}', '{0} {rel} {1}, and {2}',
          'a photo of {0}, {1} and {2}')
_TEMPLATES = {1: _ONE, 2: _TWO, 3: _THREE}


def caption_scene(scene: Scene, rng: np.random.Generator, template: Optional[int] = None) -> str:
    """Writes a caption naming the colour and shape of every object, in a random order and phrasing.

    Args:
        scene: A scene with 1-3 objects.
        rng: Source of randomness.
        template: Index into the phrasings for this object count; random if None.

    Returns:
        The caption.
    """
    templates = _TEMPLATES[len(scene.objects)]
    template = int(rng.integers(len(templates))) if template is None else template
    order = [scene.objects[i] for i in rng.permutation(len(scene.objects))]
    phrases = [describe_object(obj, rng) for obj in order]
    rel = relation(order[0], order[1]) if len(order) > 1 else ''
    return templates[template].format(*phrases, rel=rel, r=region(order[0], scene.image_size))


# ------------------------------------------------------------------------------------------------ samples


def make_caption_sample(seed: int, split: str, index: int, image_size: int,
                        num_captions: int = 1) -> tuple[Image.Image, Scene, list]:
    """Draws captioned scene ``index`` of ``split``: 1-3 separated objects and differently phrased captions.

    Returns:
        The image, its scene and ``num_captions`` captions, each with a different phrasing.
    """
    rng = _rng(seed, split, index)
    scene = sample_scene(rng, image_size, int(rng.integers(1, 4)))
    image, _ = render_scene(scene)
    templates = rng.permutation(len(_TEMPLATES[len(scene.objects)]))[:num_captions]
    return Image.fromarray(image), scene, [caption_scene(scene, rng, int(t)) for t in templates]


def make_class_sample(seed: int, split: str, class_index: int, index: int,
                      image_size: int) -> tuple[Image.Image, Scene]:
    """Draws one large object of shape ``SHAPES[class_index]`` with random colour, position and background.

    The split asks whether a model knows shapes (zero-shot, kNN and linear probes), not whether it sees tiny
    objects: the dense splits test that.
    """
    rng = _rng(seed, split, class_index, index)
    obj = sample_object(rng, image_size, shape=SHAPES[class_index], size='large')
    scene = Scene(image_size, int(rng.integers(2**31)), (obj, ))
    return Image.fromarray(render_scene(scene)[0]), scene


def make_dense_sample(seed: int, split: str, index: int, image_size: int) -> tuple[Image.Image, np.ndarray, list]:
    """Draws a dense-prediction scene: 1-4 objects that may occlude each other.

    Returns:
        The image, the label map (H, W) uint8 (0 = background, ``k + 1`` = ``SHAPES[k]``, front objects
        win) and the kept instances as ``(shape_index, visible_mask)`` pairs, back to front. Instances
        whose visible part is tiny are dropped from the list (their pixels stay in the label map).
    """
    rng = _rng(seed, split, index)
    scene = sample_scene(rng, image_size, int(rng.integers(1, 5)), allow_overlap=True)
    image, masks = render_scene(scene)
    labels = np.zeros((image_size, image_size), dtype=np.uint8)
    instances = []
    for obj, full, visible in zip(scene.objects, masks, visible_masks(masks)):
        labels[full] = SHAPES.index(obj.shape) + 1
        if visible.sum() >= max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * full.sum()):
            instances.append((SHAPES.index(obj.shape), visible))
    return Image.fromarray(image), labels, instances


# ---------------------------------------------------------------------------------------------- COCO RLE


def rle_encode(mask: np.ndarray) -> dict:
    """Encodes a boolean mask (H, W) as COCO compressed RLE, identical to ``pycocotools.mask.encode``.

    Written out here so the core package needs no pycocotools; RLE rather than polygons because it is
    exact for occluded objects and for rings, whose holes a COCO polygon cannot express.
    """
    flat = np.asarray(mask, dtype=bool).flatten(order='F')
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], starts, [flat.size]])).tolist()
    if flat[0]:
        counts.insert(0, 0)  # runs start with background
    chars = []
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count  # pycocotools stores deltas after the third run
        more = True
        while more:
            char = value & 0x1F
            value >>= 5
            more = value != -1 if char & 0x10 else value != 0
            chars.append(chr((char | 0x20 if more else char) + 48))
    return {'size': list(mask.shape), 'counts': ''.join(chars)}


def _coco_annotation(ann_id: int, image_id: int, shape_index: int, mask: np.ndarray) -> dict:
    rows, cols = np.nonzero(mask)
    x0, y0 = int(cols.min()), int(rows.min())
    bbox = [x0, y0, int(cols.max()) - x0 + 1, int(rows.max()) - y0 + 1]
    return {'id': ann_id, 'image_id': image_id, 'category_id': shape_index + 1, 'bbox': [float(v) for v in bbox],
            'area': float(mask.sum()), 'iscrowd': 0, 'segmentation': rle_encode(mask)}


# ------------------------------------------------------------------------------------------------ writers


def _save_jpeg(image: Image.Image, path: Path) -> None:
    image.save(path, format='JPEG', quality=JPEG_QUALITY)


def _write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, indent=1) + '\n')


def _write_pretrain(root: Path, seed: int, count: int, image_size: int, bar: tqdm) -> None:
    (root / 'images').mkdir(parents=True)
    with open(root / 'train.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['filepath', 'title'])
        for i in range(count):
            image, _, (caption, ) = make_caption_sample(seed, 'pretrain', i, image_size)
            _save_jpeg(image, root / 'images' / f'{i:06d}.jpg')
            writer.writerow([f'images/{i:06d}.jpg', caption])
            bar.update()


def _karpathy_entry(index: int, captions: Sequence[str]) -> dict:
    sentids = [2 * index + k for k in range(len(captions))]
    sentences = [{'raw': c, 'tokens': re.findall(r'[a-z]+', c.lower()), 'imgid': index, 'sentid': s}
                 for c, s in zip(captions, sentids)]
    return {'filename': f'{index:06d}.jpg', 'filepath': 'images', 'split': 'test', 'imgid': index,
            'sentids': sentids, 'sentences': sentences}


def _write_retrieval(root: Path, seed: int, count: int, image_size: int, bar: tqdm) -> None:
    (root / 'images').mkdir(parents=True)
    entries = []
    for i in range(count):
        image, _, captions = make_caption_sample(seed, 'retrieval', i, image_size, num_captions=2)
        _save_jpeg(image, root / 'images' / f'{i:06d}.jpg')
        entries.append(_karpathy_entry(i, captions))
        bar.update()
    _write_json({'images': entries, 'dataset': 'synthetic_world'}, root / 'karpathy.json')


def _write_classification(root: Path, seed: int, split: str, per_class: int, image_size: int, bar: tqdm) -> None:
    for class_index, name in enumerate(SHAPES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image, _ = make_class_sample(seed, split, class_index, i, image_size)
            _save_jpeg(image, root / name / f'{i:05d}.jpg')
            bar.update()


def _write_ade(root: Path, seed: int, split: str, folder: str, count: int, image_size: int, bar: tqdm) -> None:
    images, annotations = root / 'images' / folder, root / 'annotations' / folder
    images.mkdir(parents=True)
    annotations.mkdir(parents=True)
    tag = 'train' if folder == 'training' else 'val'
    for i in range(count):
        image, labels, _ = make_dense_sample(seed, split, i, image_size)
        _save_jpeg(image, images / f'ADE_{tag}_{i + 1:08d}.jpg')
        Image.fromarray(labels, mode='L').save(annotations / f'ADE_{tag}_{i + 1:08d}.png')
        bar.update()


def _write_coco(root: Path, seed: int, split: str, folder: str, count: int, image_size: int, bar: tqdm) -> None:
    (root / folder).mkdir(parents=True)
    (root / 'annotations').mkdir(exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image, _, instances = make_dense_sample(seed, split, i, image_size)
        image_id, file_name = i + 1, f'{i + 1:012d}.jpg'
        _save_jpeg(image, root / folder / file_name)
        images.append({'id': image_id, 'file_name': file_name, 'height': image_size, 'width': image_size})
        for shape_index, mask in instances:
            annotations.append(_coco_annotation(len(annotations) + 1, image_id, shape_index, mask))
        bar.update()
    categories = [{'id': k + 1, 'name': name, 'supercategory': 'shape'} for k, name in enumerate(SHAPES)]
    _write_json({'info': {'description': 'synthetic_world', 'version': str(VERSION)}, 'licenses': [],
                 'images': images, 'annotations': annotations, 'categories': categories},
                root / 'annotations' / f'instances_{folder}.json')


# ---------------------------------------------------------------------------------------------- top level


def _split_sizes(num_train: int, num_retrieval: int, num_cls_train_per_class: int, num_cls_val_per_class: int,
                 num_seg_train: int, num_seg_val: int, num_det_train: int, num_det_val: int) -> dict:
    """Images per split, keyed like ``meta.json``."""
    counts = (num_train, num_retrieval, num_cls_train_per_class * len(SHAPES), num_cls_val_per_class * len(SHAPES),
              num_seg_train, num_seg_val, num_det_train, num_det_val)
    return dict(zip(_SPLIT_NAMES, counts))


def _validate(image_size: int, counts: dict) -> None:
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f'image_size must be an int >= 32, got {image_size!r}')
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f'{name} must be a non-negative int, got {value!r}')


def _write_all(tmp: Path, seed: int, image_size: int, per_class: tuple, sizes: dict, bar: tqdm) -> None:
    _write_pretrain(tmp / 'pretrain', seed, sizes['pretrain'], image_size, bar)
    _write_json({'classes': list(SHAPES), 'templates': list(ZERO_SHOT_TEMPLATES)}, tmp / 'zero_shot.json')
    for split, folder, count in (('classification_train', 'train', per_class[0]),
                                 ('classification_val', 'val', per_class[1])):
        _write_classification(tmp / CLASSIFICATION_DIR / folder, seed, split, count, image_size, bar)
    _write_retrieval(tmp / 'retrieval', seed, sizes['retrieval'], image_size, bar)
    _write_ade(tmp / 'ade', seed, 'ade_train', 'training', sizes['ade_train'], image_size, bar)
    _write_ade(tmp / 'ade', seed, 'ade_val', 'validation', sizes['ade_val'], image_size, bar)
    _write_coco(tmp / 'coco', seed, 'coco_train', 'train2017', sizes['coco_train'], image_size, bar)
    _write_coco(tmp / 'coco', seed, 'coco_val', 'val2017', sizes['coco_val'], image_size, bar)
    # Written last: its presence marks a complete world.
    _write_json({'seed': seed, 'image_size': image_size, 'splits': sizes, 'version': VERSION}, tmp / 'meta.json')


def _check_target(out: Path, overwrite: bool) -> bool:
    """Whether ``out`` must be removed first; raises if it holds something we may not delete."""
    if not out.exists():
        return False
    if overwrite or (out.is_dir() and not any(out.iterdir())):
        return True
    raise FileExistsError(f'{out} already exists; pass overwrite=True (--overwrite) to replace it')


def _prepare_target(out: Path, overwrite: bool) -> None:
    """Makes room for the finished world at ``out``, refusing to delete anything unless asked."""
    if _check_target(out, overwrite) and out.is_dir():
        shutil.rmtree(out)
    elif _check_target(out, overwrite):
        out.unlink()


def generate_world(out: str | Path, seed: int = 0, image_size: int = 128, num_train: int = 6000,
                   num_retrieval: int = 500, num_cls_train_per_class: int = 60, num_cls_val_per_class: int = 40,
                   num_seg_train: int = 300, num_seg_val: int = 100, num_det_train: int = 300,
                   num_det_val: int = 100, progress: bool = True, overwrite: bool = False) -> Path:
    """Generates the synthetic world into ``out``.

    The world is written into a sibling folder ``<out>.tmp-<pid>`` and renamed into place when
    complete, so an interrupted run never leaves a folder that looks finished.

    Args:
        out: Destination folder; must not exist (or be empty) unless ``overwrite``.
        seed: Seed of the whole world; the same seed gives byte-identical files.
        image_size: Side of the square images in pixels (>= 32).
        num_train: Pretraining image-caption pairs.
        num_retrieval: Retrieval images (two captions each).
        num_cls_train_per_class: Classification training images per shape.
        num_cls_val_per_class: Classification validation (zero-shot) images per shape.
        num_seg_train: ADE-style segmentation training images.
        num_seg_val: ADE-style segmentation validation images.
        num_det_train: COCO-style detection training images.
        num_det_val: COCO-style detection validation images.
        progress: Show a progress bar over all images.
        overwrite: Replace an existing ``out``.

    Returns:
        ``out`` as a Path.
    """
    sizes = _split_sizes(num_train, num_retrieval, num_cls_train_per_class, num_cls_val_per_class, num_seg_train,
                         num_seg_val, num_det_train, num_det_val)
    _validate(image_size, {**sizes, 'num_cls_train_per_class': num_cls_train_per_class,
                           'num_cls_val_per_class': num_cls_val_per_class})
    out = Path(out)
    _check_target(out, overwrite)  # fail before spending minutes on a world we could not move into place
    tmp = out.parent / f'{out.name}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)  # left over from a crashed run that had our pid
    tmp.mkdir(parents=True)
    try:
        # redraw often on a terminal, rarely in a log file (each redraw there is a new line of output)
        interval = 0.1 if sys.stderr.isatty() else 5.0
        with tqdm(total=sum(sizes.values()), desc='synthetic world', unit='img', disable=not progress,
                  mininterval=interval) as bar:
            _write_all(tmp, seed, image_size, (num_cls_train_per_class, num_cls_val_per_class), sizes, bar)
        _prepare_target(out, overwrite)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_world(root: str | Path, **kwargs) -> Path:
    """Returns ``root``, generating the world there first if ``root/meta.json`` is missing.

    Under torch.distributed this is a collective (call it on every rank): rank 0 generates while the
    other ranks wait at a barrier. The barrier runs even when the world exists, because ranks that
    look at different moments could otherwise disagree on whether to wait.

    Args:
        root: Folder of the world.
        **kwargs: Passed to :func:`generate_world`.

    Returns:
        ``root`` as a Path.

    Raises:
        RuntimeError: If after generation ``meta.json`` is not visible on this rank (for example a
            node-local ``root`` on a multi-node run).
    """
    root = Path(root)
    if get_world_size() == 1:
        return root if (root / 'meta.json').exists() else generate_world(root, **kwargs)
    error = None
    if get_rank() == 0 and not (root / 'meta.json').exists():
        try:
            generate_world(root, **kwargs)
        except Exception as e:  # still reach the barrier, so the other ranks fail instead of hanging
            error = e
    barrier()
    if error is not None:
        raise error
    if not (root / 'meta.json').exists():
        raise RuntimeError(f'rank {get_rank()} cannot see {root / "meta.json"} after rank 0 generated it; '
                           'is the folder shared by all ranks?')
    return root
