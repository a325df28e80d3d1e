"""View pipelines: several augmented uint8 views of one decoded image, plus packing into model inputs.

A view recipe is a list of transform configs (``type`` = a class registered in our TRANSFORMS or a
``torchvision.transforms.v2`` class name, ``interpolation`` given as a string, nested ``transforms`` lists allowed);
each view ends as a ``(3, H, W)`` uint8 tensor. The reference recipes are in :mod:`.augment`. Normalisation happens
on the device in the data preprocessor, so workers ship uint8 (4x less inter-process traffic than float).
"""
import math
from typing import Iterable, Optional, Sequence, Union

import torch
from mmengine.structures import BaseDataElement
from torchvision.transforms import InterpolationMode, v2

from detailclip.registry import TRANSFORMS
from .augment import sized_recipe


def build_transform(cfg: dict) -> v2.Transform:
    """One transform config -> transform; nested ``transforms`` lists (RandomApply, RandomChoice) are built too.

    ``type`` is looked up among the platform's own transforms (``detailclip.registry.TRANSFORMS``, e.g.
    ``PILGaussianBlur``) first, then in ``torchvision.transforms.v2``.
    """
    cfg = dict(cfg)
    name = cfg.pop('type')
    if 'transforms' in cfg:
        cfg['transforms'] = [build_transform(step) for step in cfg['transforms']]
    if isinstance(cfg.get('interpolation'), str):
        cfg['interpolation'] = InterpolationMode(cfg['interpolation'])
    return transform_class(name)(**cfg)


def transform_class(name: str) -> type:
    """Our registry's own entries only (not MMEngine's parent registry, where downstream packages register
    same-named transforms), then torchvision v2's transform classes."""
    if name in TRANSFORMS.module_dict:
        return TRANSFORMS.module_dict[name]
    cls = getattr(v2, name, None)
    if not (isinstance(cls, type) and issubclass(cls, v2.Transform)):
        raise KeyError(f'unknown view transform {name!r}: use a class registered in detailclip TRANSFORMS or a '
                       'transform class of torchvision.transforms.v2')
    return cls


def build_view(recipe: Sequence[dict]) -> v2.Compose:
    """Build one view recipe (a list of transform configs, see :func:`build_transform`) ending in a uint8 tensor."""
    return v2.Compose([*map(build_transform, recipe), v2.PILToTensor(), v2.ToDtype(torch.uint8)])


# Steps that move no pixel relative to the others and act the same at any resolution: they may come before the crop
# of a view decoded at reduced size (blur, sharpening and equalisation do depend on the resolution).
PIXELWISE = frozenset({'ColorJitter', 'Grayscale', 'RandomGrayscale', 'RandomSolarize', 'RandomInvert',
                       'RandomPosterize', 'RandomChannelPermutation', 'RandomHorizontalFlip', 'RandomVerticalFlip'})
CONTAINERS = frozenset({'RandomApply', 'RandomChoice', 'RandomOrder', 'Compose'})


def crop_source_side(size: Union[int, Sequence[int]], scale: Sequence[float], ratio: Sequence[float]) -> float:
    """Shorter source side, in pixels, from which every crop of ``RandomResizedCrop(size, scale, ratio)`` is
    downscaled to the view, never upscaled.

    A crop covers the area ``s * W * H`` (``s >= scale[0]``) with aspect ``w / h = r`` in ``ratio``, so it is
    ``sqrt(s W H r)`` wide and ``sqrt(s W H / r)`` high. With ``W, H >= L`` (the shorter side), even the smallest,
    most elongated crop keeps ``L * sqrt(scale[0] * min(ratio[0], 1 / ratio[1]))`` pixels on each side; when that is
    at least the view's larger side, the view of a source decoded at that size matches the full-resolution one up to
    resampling error. A rule on the view size alone (say 2x) is not enough: at DetailCLIP's scale 0.14 a 224-pixel
    view needs ``L >= 692``, at SLIP's 0.08 ``L >= 915``, while CLIP's 0.5 needs only ``L >= 366``.
    """
    longest = size if isinstance(size, int) else max(size)
    return longest / math.sqrt(scale[0] * min(ratio[0], 1 / ratio[1]))


def recipe_source_side(recipe: Sequence[dict]) -> Optional[float]:
    """Shorter source side a view recipe needs: :func:`crop_source_side` for a first ``RandomResizedCrop``, the
    target for a first ``Resize`` (the shorter side resized to ``size``, or to ``(h, w)``); None (the full
    resolution) when the recipe resizes nothing, resizes some other way, or a step before the resize is not one of
    :data:`PIXELWISE`."""
    for step in recipe:
        kind = step['type']
        if kind == 'RandomResizedCrop':
            return crop_source_side(step['size'], step.get('scale', (0.08, 1.0)), step.get('ratio', (3 / 4, 4 / 3)))
        if kind == 'Resize':
            size = step.get('size')
            return None if size is None else size if isinstance(size, int) else max(size)
        if not _pixelwise(step):
            return None
    return None


def views_source_side(recipes: Iterable[Sequence[dict]]) -> Optional[float]:
    """The largest :func:`recipe_source_side` of several views; None when any view needs the full resolution."""
    sides = [recipe_source_side(recipe) for recipe in recipes]
    return None if not sides or None in sides else max(sides)


def _pixelwise(step: dict) -> bool:
    if step['type'] in CONTAINERS:
        return all(map(_pixelwise, step['transforms']))
    return step['type'] in PIXELWISE


@TRANSFORMS.register_module()
class MultiView:
    """``results['img']`` -> ``results['views']``: one ``(3, H, W)`` uint8 tensor per recipe.

    Args:
        views (list[list[dict] | str]): One recipe per view: a list of transform configs, or the name of a recipe in
            :data:`~detailclip.datasets.transforms.augment.RECIPES` (``'clip'``, ``'detailclip'``, ``'slip_simclr'``,
            ...) cropped to ``size``.
        num_repeats (int): Each recipe is applied this many times (DetailCLIP: one recipe, two views).
        size (int, optional): Crop size of named recipes.
        copies (int): Each view is emitted this many times, identical (MaskCLIP: the student sees a view once in full
            and once masked, and the teacher sees the same full view).

    Attributes:
        source_side (float | None): Shorter source side the views need (:func:`views_source_side`), read by
            :func:`~detailclip.datasets.transforms.loading.plan_decoding`.
    """

    def __init__(self, views: Sequence[Union[Sequence[dict], str]], num_repeats: int = 1, size: Optional[int] = None,
                 copies: int = 1):
        recipes = [sized_recipe(v, size) if isinstance(v, str) else v for v in views]
        self.recipes = [build_view(recipe) for recipe in recipes for _ in range(num_repeats)]
        self.copies = copies
        self.source_side = views_source_side(recipes)

    def __call__(self, results: dict) -> dict:
        results['views'] = [view for recipe in self.recipes for view in [recipe(results['img'])] * self.copies]
        return results


@TRANSFORMS.register_module()
class PackImageText:
    """Pack a sample as ``dict(inputs=dict(views=[...], text=(L,)), data_samples=BaseDataElement)``.

    ``teacher_views`` (the teacher's own views) and ``boxes`` ((V + V_t, 4) crop boxes) are packed into ``inputs``
    when the view transform made them (A-CLIP's :class:`EnclosingCropTriplet`).

    Args:
        meta_keys (tuple[str]): Keys of ``results`` copied into the data sample (e.g. ``gt_label``,
            ``img_id``, ``caption_tokens`` for retrieval, whose caption count varies per image).
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'sample_idx')):
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        inputs = {key: results[key] for key in ('views', 'teacher_views', 'boxes', 'text') if key in results}
        sample = BaseDataElement()
        for key in self.meta_keys:
            if key in results:
                sample.set_field(results[key], key)
        return dict(inputs=inputs, data_samples=sample)
