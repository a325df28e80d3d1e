"""View pipelines: nested/registered transforms, reference recipes, A-CLIP's enclosing crops, multi-crop, packing."""
import random
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import RandomResizedCrop, v2

from detailclip.datasets.transforms import (RECIPES, EnclosingCropTriplet, MultiCrop, MultiView, PackImageText,
                                            PILGaussianBlur, build_transform, build_view, enclosing_box, sized_recipe)
from detailclip.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD, ImageTextDataPreprocessor
from detailclip.registry import TRANSFORMS

S, S_LOCAL = 16, 8  # view sizes: tiny, and never the recipes' 224 / 96


def textured(h: int = 40, w: int = 48, seed: int = 0) -> Image.Image:
    """Gradient + noise, so that different crops and colour changes give different pixels."""
    rng = np.random.default_rng(seed)
    grad = np.linspace(0, 200, w)[None, :, None] + np.linspace(0, 50, h)[:, None, None]
    return Image.fromarray(np.clip(grad + rng.integers(0, 55, (h, w, 3)), 0, 255).astype(np.uint8))


def seeded(seed: int, fn, *args):
    """Run ``fn`` under the dataset's per-sample seeding (SkippingDataset.__getitem__)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return fn(*args)


def as_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


# ------------------------------------------------------------------------------------------------ build_transform
def test_nested_and_registered_transforms_build():
    cfg = dict(type='RandomApply', p=0.8,
               transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
                           dict(type='PILGaussianBlur', p=0.3)])
    t = build_transform(cfg)
    assert isinstance(t, v2.RandomApply) and t.p == 0.8
    jitter, blur = t.transforms
    assert isinstance(jitter, v2.ColorJitter) and jitter.saturation == (0.8, 1.2) and jitter.hue == (-0.1, 0.1)
    assert isinstance(blur, PILGaussianBlur) and blur.p == 0.3 and blur.sigma == (0.1, 2.0)
    assert cfg['transforms'][0]['type'] == 'ColorJitter'  # the config is not consumed
    crop = build_transform(dict(type='RandomResizedCrop', size=S, interpolation='bicubic'))
    assert crop.interpolation == v2.InterpolationMode.BICUBIC


def test_registry_is_searched_before_torchvision(monkeypatch):
    class Marker(v2.Transform):
        def transform(self, inpt, params):
            return inpt

    monkeypatch.setitem(TRANSFORMS.module_dict, 'RandomGrayscale', Marker)
    assert type(build_transform(dict(type='RandomGrayscale'))) is Marker


@pytest.mark.parametrize('cfg', [dict(type='NoSuchTransform'), dict(type='functional'), dict(type='resize'),
                                 dict(type='RandomApply', transforms=[dict(type='ColourJitter')])])
def test_unknown_transform_raises_keyerror_with_name(cfg):
    name = cfg['transforms'][0]['type'] if 'transforms' in cfg else cfg['type']
    with pytest.raises(KeyError, match=name):
        build_view([cfg])


# ---------------------------------------------------------------------------------------------- blur and solarize
def test_pil_gaussian_blur_is_pil_filter_with_drawn_radius(monkeypatch):
    img = textured()
    out = PILGaussianBlur(sigma=(1.5, 1.5), p=1.0)(img)
    assert np.array_equal(np.asarray(out), np.asarray(img.filter(ImageFilter.GaussianBlur(radius=1.5))))
    assert PILGaussianBlur(p=0.0)(img) is img
    with pytest.raises(TypeError, match='PIL'):
        PILGaussianBlur(p=1.0)(as_tensor(img))

    radii, pil_blur = [], ImageFilter.GaussianBlur

    def recording_blur(radius):
        radii.append(radius)
        return pil_blur(radius)

    monkeypatch.setattr(ImageFilter, 'GaussianBlur', recording_blur)
    blur, small = PILGaussianBlur(sigma=(0.1, 2.0), p=0.5), textured(6, 6)
    torch.manual_seed(0)
    outs = [blur(small) for _ in range(1000)]
    assert sum(o is not small for o in outs) == len(radii)
    assert 440 <= len(radii) <= 560  # p = 0.5 (binomial sd ~16)
    assert min(radii) >= 0.1 and max(radii) <= 2.0
    assert np.mean(radii) == pytest.approx(1.05, abs=0.08) and min(radii) < 0.2 and max(radii) > 1.9  # U(0.1, 2)
    assert [o is small for o in seeded(4, lambda: [blur(small) for _ in range(20)])] == \
        [o is small for o in seeded(4, lambda: [blur(small) for _ in range(20)])]


def test_solarize_recipe_step_on_pil_uint8():
    arr = np.tile(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), (1, 1, 3))
    step = build_transform(dict(RECIPES['detailclip'][-1], p=1.0))
    assert isinstance(step, v2.RandomSolarize)
    out = np.asarray(step(Image.fromarray(arr)))
    expected = np.where(arr >= 128, 255 - arr, arr)  # DINO's Solarization: ImageOps.solarize(img), threshold 128
    assert np.array_equal(out, expected)
    assert np.array_equal(out, np.asarray(ImageOps.solarize(Image.fromarray(arr))))


# ------------------------------------------------------------------------------------------------------ recipes
def summary(recipe):
    """(crop scale, interpolation, jitter saturation, jitter p, grayscale p, blur p, solarize p, flip p) of a recipe."""
    by_type = {step['type']: step for step in recipe}
    crop, jitter = by_type.get('RandomResizedCrop'), by_type.get('RandomApply')
    if jitter:
        assert [t['type'] for t in jitter['transforms']] == ['ColorJitter']
        inner = jitter['transforms'][0]
        assert (inner['brightness'], inner['contrast'], inner['hue']) == (0.4, 0.4, 0.1)
    if crop:
        assert crop['ratio'] == (3 / 4, 4 / 3) and 'size' not in crop
    if 'RandomSolarize' in by_type:
        assert by_type['RandomSolarize']['threshold'] == 128
    return (crop and crop['scale'], crop and crop['interpolation'], jitter and jitter['transforms'][0]['saturation'],
            jitter and jitter['p'], by_type.get('RandomGrayscale', {}).get('p'),
            by_type.get('PILGaussianBlur', {}).get('p'), by_type.get('RandomSolarize', {}).get('p'),
            by_type.get('RandomHorizontalFlip', {}).get('p'))


@pytest.mark.parametrize('name,expected', [
    ('clip', ((0.5, 1.0), 'bilinear', None, None, None, None, None, None)),
    ('detailclip', ((0.14, 1.0), 'bicubic', 0.2, 0.8, 0.2, 0.1, 0.2, None)),
    ('slip_simclr', ((0.08, 1.0), 'bilinear', 0.4, 0.8, 0.2, 0.5, None, 0.5)),
    ('aclip_student', (None, None, 0.2, 0.8, 0.2, 0.1, 0.2, None)),
    ('aclip_teacher', (None, None, None, None, None, None, None, None)),
    ('dino_global1', (None, None, 0.2, 0.8, 0.2, 1.0, None, 0.5)),
    ('dino_global2', (None, None, 0.2, 0.8, 0.2, 0.1, 0.2, 0.5)),
    ('dino_local', (None, None, 0.2, 0.8, 0.2, 0.5, None, 0.5)),
])
def test_recipes_match_methods_md(name, expected):
    assert summary(RECIPES[name]) == expected


def test_sized_recipe_sets_size_and_copies():
    recipe = sized_recipe('detailclip', S)
    assert recipe[0]['size'] == S and 'size' not in RECIPES['detailclip'][0]
    recipe[1]['transforms'][0]['hue'] = 0.0
    assert RECIPES['detailclip'][1]['transforms'][0]['hue'] == 0.1
    with pytest.raises(ValueError, match='size'):
        sized_recipe('clip')
    assert sized_recipe('aclip_student') == RECIPES['aclip_student']


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_every_recipe_shape_dtype_and_seed_determinism(name):
    img = textured()
    view = build_view(sized_recipe(name, S))
    shape = (3, S, S) if 'RandomResizedCrop' in str(RECIPES[name]) else (3, img.height, img.width)
    a, b = seeded(7, view, img), seeded(7, view, img)
    assert a.dtype == torch.uint8 and a.shape == shape
    assert torch.equal(a, b)
    if name != 'aclip_teacher':  # identity: nothing random
        assert sum(not torch.equal(a, seeded(s, view, img)) for s in range(8, 14)) == 6


def test_detailclip_two_views_are_one_recipe_repeated():
    mv = MultiView(views=[sized_recipe('detailclip', S)], num_repeats=2)
    out = seeded(3, mv, dict(img=textured()))['views']
    assert len(out) == 2 and all(v.shape == (3, S, S) and v.dtype == torch.uint8 for v in out)
    assert not torch.equal(*out)  # i.i.d. views, not one view twice
    assert all(torch.equal(x, y) for x, y in zip(out, seeded(3, mv, dict(img=textured()))['views']))


# -------------------------------------------------------------------------------------------- enclosing crops
def contains(outer, inner) -> bool:
    (t, l, h, w), (i, j, hh, ww) = outer, inner
    return t <= i and l <= j and i + hh <= t + h and j + ww <= l + w


def inside_image(box, height, width) -> bool:
    t, l, h, w = box
    return t >= 0 and l >= 0 and h > 0 and w > 0 and t + h <= height and l + w <= width


def draw_triplets(height, width, n, legacy, scale=(0.5, 1.0), seed=0):
    img = Image.new('RGB', (width, height))
    torch.manual_seed(seed)
    for _ in range(n):
        students = [RandomResizedCrop.get_params(img, scale, (3 / 4, 4 / 3)) for _ in range(2)]
        yield students, enclosing_box(students, height, width, legacy)


@pytest.mark.parametrize('height,width', [(375, 500), (500, 375), (7, 9), (3, 2), (1, 1), (64, 16)])
@pytest.mark.parametrize('scale', [(0.5, 1.0), (0.08, 1.0)])
def test_clean_enclosing_box_always_encloses(height, width, scale):
    for students, teacher in draw_triplets(height, width, 250, legacy=False, scale=scale):
        assert inside_image(teacher, height, width)
        assert all(contains(teacher, s) for s in students), (students, teacher)


def test_clean_enclosing_box_is_uniform_over_edges():
    students = [(2, 1, 2, 2), (3, 2, 1, 2)]  # union: top 2, left 1, bottom 4, right 4 in a 6 x 5 image
    torch.manual_seed(0)
    edges = Counter()
    for _ in range(3600):
        t, l, h, w = enclosing_box(students, 6, 5)
        edges[t, l, t + h, l + w] += 1
    expected = {(t, j, b, r) for t in range(3) for j in range(2) for b in range(4, 7) for r in range(4, 6)}
    assert set(edges) == expected
    assert all(50 <= c <= 150 for c in edges.values())  # 100 each (sd ~10)


def test_legacy_enclosing_box_often_misses_a_student_box():
    for height, width in [(375, 500), (500, 375)]:
        triplets = list(draw_triplets(height, width, 1000, legacy=True))
        assert all(inside_image(t, height, width) for _, t in triplets)
        missed = np.mean([not all(contains(t, s) for s in students) for students, t in triplets])
        print(f'legacy sampler, {height}x{width}: teacher box misses a student box in {missed:.1%} of draws')
        assert 0.6 < missed < 0.8  # docs/methods.md 6.1: ~71 %


def reference_three_crop_boxes(img, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
    """A-CLIP's ``GetThreeRandomResizedCrop.forward`` (datasets.py:240-277), boxes only, transcribed."""
    ret1 = RandomResizedCrop.get_params(img, scale, ratio)
    ret2 = RandomResizedCrop.get_params(img, scale, ratio)
    width, height = img.size
    ret3 = [0, 0, 0, 0]
    ret3[0], ret3[1], = min(ret1[0], ret2[0]), min(ret1[1], ret2[2])
    rh = max(ret1[0] + ret1[2], ret2[0] + ret2[2])
    rw = max(ret1[1] + ret1[3], ret2[1] + ret2[3])
    ret3[2], ret3[3] = rh - ret3[0], rw - ret3[1]
    ret3[0] = torch.randint(0, ret3[0] + 1, size=(1, )).item() if ret3[0] > 0 else ret3[0]
    ret3[1] = torch.randint(0, ret3[1] + 1, size=(1, )).item() if ret3[1] > 0 else ret3[1]
    ret3[2] = torch.randint(ret3[2], height - ret3[0] + 1, size=(1, )).item() if ret3[2] < height else ret3[2]
    ret3[3] = torch.randint(ret3[3], width - ret3[1] + 1, size=(1, )).item() if ret3[3] < width else ret3[3]
    return [ret1, ret2, ret3]


@pytest.mark.parametrize('size', [(40, 48), (48, 40), (12, 12)])
def test_legacy_triplet_reproduces_reference_boxes(size):
    img = textured(*size)
    triplet = EnclosingCropTriplet(S, legacy_union_bug=True)
    for seed in range(20):
        torch.manual_seed(seed)
        expected = torch.tensor(reference_three_crop_boxes(img), dtype=torch.float32)
        assert torch.equal(seeded(seed, triplet, dict(img=img))['boxes'], expected)


def resized_crop_reference(img, box, size, resample=Image.BILINEAR) -> torch.Tensor:
    t, l, h, w = (int(v) for v in box)
    return as_tensor(img.crop((l, t, l + w, t + h)).resize((size, size), resample))


@pytest.mark.parametrize('legacy', [False, True])
def test_triplet_outputs_and_boxes_map_back(legacy):
    img = textured(37, 53)
    plain = EnclosingCropTriplet(S, student_recipe=RECIPES['aclip_teacher'], teacher_size=S + 4,
                                 legacy_union_bug=legacy)
    coloured = EnclosingCropTriplet(S, teacher_size=S + 4, legacy_union_bug=legacy)
    changed = 0
    for seed in range(12):
        out = seeded(seed, plain, dict(img=img))
        assert [v.shape for v in out['views']] == [(3, S, S)] * 2 and out['views'][0].dtype == torch.uint8
        assert [v.shape for v in out['teacher_views']] == [(3, S + 4, S + 4)]
        boxes = out['boxes']
        assert boxes.dtype == torch.float32 and boxes.shape == (3, 4)
        assert all(inside_image(b.tolist(), 37, 53) for b in boxes)
        for view, box in zip(out['views'], boxes[:2]):
            assert torch.equal(view, resized_crop_reference(img, box, S))
        assert torch.equal(out['teacher_views'][0], resized_crop_reference(img, boxes[2], S + 4))
        if not legacy:
            assert all(contains(boxes[2].tolist(), b.tolist()) for b in boxes[:2])
        # the default (coloured) students are cut at the same boxes; the teacher stays uncoloured
        col = seeded(seed, coloured, dict(img=img))
        assert torch.equal(col['boxes'], boxes) and torch.equal(col['teacher_views'][0], out['teacher_views'][0])
        changed += sum(not torch.equal(a, b) for a, b in zip(col['views'], out['views']))
    assert changed >= 12  # colour jitter p 0.8 etc. on most of the 24 student views
    assert torch.equal(seeded(5, coloured, dict(img=img))['views'][0], seeded(5, coloured, dict(img=img))['views'][0])


# --------------------------------------------------------------------------------------------------- multi-crop
def test_multicrop_views_sizes_recipes_and_determinism():
    mc = MultiCrop(global_size=S, local_size=S_LOCAL, n_global=2, n_local=3, global_scale=(0.25, 1.0),
                   local_scale=(0.05, 0.25))
    out = seeded(1, mc, dict(img=textured()))['views']
    assert [tuple(v.shape) for v in out] == [(3, S, S)] * 2 + [(3, S_LOCAL, S_LOCAL)] * 3
    assert all(v.dtype == torch.uint8 for v in out)
    again = seeded(1, mc, dict(img=textured()))['views']
    assert all(torch.equal(a, b) for a, b in zip(out, again))
    assert any(not torch.equal(a, b) for a, b in zip(out, seeded(2, mc, dict(img=textured()))['views']))

    def steps(view):
        return [(type(t).__name__, getattr(t, 'p', None)) for t in view.transforms[:-2]]

    crops = [view.transforms[0] for view in mc.views]
    assert [c.scale for c in crops] == [(0.25, 1.0)] * 2 + [(0.05, 0.25)] * 3
    assert all(c.interpolation == v2.InterpolationMode.BICUBIC for c in crops)
    common = [('RandomResizedCrop', None), ('RandomHorizontalFlip', 0.5), ('RandomApply', 0.8),
              ('RandomGrayscale', 0.2)]
    assert steps(mc.views[0]) == common + [('PILGaussianBlur', 1.0)]
    assert steps(mc.views[1]) == common + [('PILGaussianBlur', 0.1), ('RandomSolarize', 0.2)]
    assert all(steps(v) == common + [('PILGaussianBlur', 0.5)] for v in mc.views[2:])
    with pytest.raises(ValueError, match='local_size'):
        MultiCrop(global_size=S, n_local=2)


# ------------------------------------------------------------------------------------------ packing and batching
def test_pack_and_preprocess_teacher_views_and_boxes():
    triplet, pack = EnclosingCropTriplet(S, teacher_size=S + 4), PackImageText()
    samples = []
    for seed in range(3):
        results = seeded(seed, triplet, dict(img=textured(seed=seed), img_path=f'{seed}.png'))
        results['text'] = torch.arange(5) + seed
        samples.append(pack(results))
    assert set(samples[0]['inputs']) == {'views', 'teacher_views', 'boxes', 'text'}
    batch = ImageTextDataPreprocessor()(pseudo_collate(samples))['inputs']
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for key in ('views', 'teacher_views'):
        for v, per_view in enumerate(batch[key]):
            raw = torch.stack([s['inputs'][key][v] for s in samples]).float()
            assert per_view.dtype == torch.float32
            torch.testing.assert_close(per_view, (raw - mean) / std)
    assert [tuple(v.shape) for v in batch['teacher_views']] == [(3, 3, S + 4, S + 4)]
    assert batch['boxes'].shape == (3, 3, 4)
    assert torch.equal(batch['boxes'], torch.stack([s['inputs']['boxes'] for s in samples]))
    assert torch.equal(batch['text'], torch.stack([torch.arange(5) + s for s in range(3)]))


@pytest.mark.parametrize('trim', [True, False])
def test_preprocess_drops_the_padding_columns_of_the_batch(trim):
    """Captions padded to the context length come out cut after the longest one (SOT ... EOT, then zeros)."""
    rows = [[7, 3, 9, 0, 0, 0, 0], [7, 9, 0, 0, 0, 0, 0]]
    data = dict(inputs=dict(views=[[torch.zeros(3, 2, 2, dtype=torch.uint8)] * 2], text=list(torch.tensor(rows))))
    text = ImageTextDataPreprocessor(trim_text_padding=trim)(data)['inputs']['text']
    assert text.tolist() == ([row[:3] for row in rows] if trim else rows)
    full = dict(inputs=dict(views=data['inputs']['views'], text=list(torch.arange(1, 15).view(2, 7))))
    assert ImageTextDataPreprocessor()(full)['inputs']['text'].shape == (2, 7)


def test_pack_and_preprocess_without_teacher_views_unchanged():
    mv, pack = MultiView([sized_recipe('clip', S)]), PackImageText()
    samples = [pack(seeded(s, mv, dict(img=textured(seed=s)))) for s in range(2)]
    assert set(samples[0]['inputs']) == {'views'}
    batch = ImageTextDataPreprocessor()(pseudo_collate(samples))['inputs']
    assert set(batch) == {'views'} and batch['views'][0].shape == (2, 3, S, S)
