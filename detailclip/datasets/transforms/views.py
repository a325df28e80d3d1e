"""View pipelines: several augmented uint8 views of one decoded image, plus packing into model inputs.

A view recipe is a list of ``torchvision.transforms.v2`` configs (``type`` = the class name, ``interpolation``
given as a string); each view ends as a ``(3, H, W)`` uint8 tensor. Normalisation happens on the device in the
data preprocessor, so workers ship uint8 (4x less inter-process traffic than float).
"""
from typing import List, Sequence

import torch
from mmengine.structures import BaseDataElement
from torchvision.transforms import InterpolationMode, v2

from detailclip.registry import TRANSFORMS


def build_view(recipe: Sequence[dict]) -> v2.Compose:
    """Build one view recipe (a list of torchvision v2 transform configs) ending in a uint8 tensor."""
    steps = []
    for cfg in recipe:
        cfg = dict(cfg)
        name = cfg.pop('type')
        if not hasattr(v2, name):
            raise KeyError(f'unknown view transform {name!r}: use a class name from torchvision.transforms.v2')
        if isinstance(cfg.get('interpolation'), str):
            cfg['interpolation'] = InterpolationMode(cfg['interpolation'])
        steps.append(getattr(v2, name)(**cfg))
    return v2.Compose([*steps, v2.PILToTensor(), v2.ToDtype(torch.uint8)])


@TRANSFORMS.register_module()
class MultiView:
    """``results['img']`` -> ``results['views']``: one ``(3, H, W)`` uint8 tensor per recipe.

    Args:
        views (list[list[dict]]): One recipe per view, e.g. CLIP's single RandomResizedCrop(scale 0.5-1).
        num_repeats (int): Each recipe is applied this many times (DetailCLIP: one recipe, two views).
    """

    def __init__(self, views: Sequence[Sequence[dict]], num_repeats: int = 1):
        self.recipes = [build_view(recipe) for recipe in views for _ in range(num_repeats)]

    def __call__(self, results: dict) -> dict:
        results['views'] = [recipe(results['img']) for recipe in self.recipes]
        return results


@TRANSFORMS.register_module()
class PackImageText:
    """Pack a sample as ``dict(inputs=dict(views=[...], text=(L,)), data_samples=BaseDataElement)``.

    Args:
        meta_keys (tuple[str]): Keys of ``results`` copied into the data sample (e.g. ``gt_label``,
            ``img_id``, ``caption_tokens`` for retrieval, whose caption count varies per image).
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'sample_idx')):
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        inputs = dict(views=results['views'])
        if 'text' in results:
            inputs['text'] = results['text']
        sample = BaseDataElement()
        for key in self.meta_keys:
            if key in results:
                sample.set_field(results[key], key)
        return dict(inputs=inputs, data_samples=sample)


def stack_views(views: List[List[torch.Tensor]]) -> List[torch.Tensor]:
    """Per-sample lists of V views -> V tensors of shape ``(B, 3, H, W)``."""
    return [torch.stack(per_view) for per_view in zip(*views)]
