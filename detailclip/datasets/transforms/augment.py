"""Photometric augmentations of the reference recipes and the recipes themselves as view configs.

Every random draw uses torch's RNG, so the dataset's per-sample seeding (``torch.manual_seed`` before the pipeline)
fixes every view. ``RECIPES`` holds the view recipes of CLIP, SLIP, A-CLIP, DINO/iBOT and DetailCLIP as lists of
transform configs (see :func:`build_view`); crop sizes are left out and set with :func:`sized_recipe`.
"""
import copy
from typing import Any, Dict, List, Optional, Tuple

import torch
from PIL import Image, ImageFilter
from torchvision.transforms import v2

from detailclip.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PILGaussianBlur(v2.Transform):
    """Gaussian blur of a PIL image with radius ~ U(sigma), applied with probability ``p``.

    The blur of DINO (arXiv 2104.14294), SLIP (arXiv 2112.12750) and DetailCLIP (arXiv 2409.06809): PIL's
    ``ImageFilter.GaussianBlur`` (kernel sized by PIL from the radius), not torchvision's fixed-kernel blur.

    Args:
        sigma (tuple[float, float]): Range of the blur radius in pixels.
        p (float): Probability of blurring.
    """

    _transformed_types = (Image.Image, )

    def __init__(self, sigma: Tuple[float, float] = (0.1, 2.0), p: float = 0.5):
        super().__init__()
        self.sigma = tuple(sigma)
        self.p = p

    def check_inputs(self, flat_inputs: List[Any]) -> None:
        if not any(isinstance(inpt, Image.Image) for inpt in flat_inputs):
            raise TypeError('PILGaussianBlur works on PIL images: place it before PILToTensor')

    def make_params(self, flat_inputs: List[Any]) -> Dict[str, Any]:
        if torch.rand(1).item() >= self.p:
            return dict(radius=None)
        return dict(radius=torch.empty(1).uniform_(*self.sigma).item())

    def transform(self, inpt: Image.Image, params: Dict[str, Any]) -> Image.Image:
        if params['radius'] is None:
            return inpt
        return inpt.filter(ImageFilter.GaussianBlur(radius=params['radius']))


def _color_jitter(saturation: float) -> dict:
    """ColorJitter(0.4, 0.4, saturation, 0.1) applied with probability 0.8, as every reference recipe has it."""
    jitter = dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=saturation, hue=0.1)
    return dict(type='RandomApply', transforms=[jitter], p=0.8)


def _crop(scale: Tuple[float, float], interpolation: str) -> dict:
    return dict(type='RandomResizedCrop', scale=scale, ratio=(3 / 4, 4 / 3), interpolation=interpolation,
                antialias=True)


_GRAY = dict(type='RandomGrayscale', p=0.2)
_SOLARIZE = dict(type='RandomSolarize', threshold=128, p=0.2)  # PIL ImageOps.solarize: inverts pixels >= 128
_FLIP = dict(type='RandomHorizontalFlip', p=0.5)


def _blur(p: float) -> dict:
    return dict(type='PILGaussianBlur', sigma=(0.1, 2.0), p=p)


RECIPES: Dict[str, List[dict]] = dict(
    # CLIP as SLIP trains it (docs/methods.md 2): one crop, no colour, no flip
    clip=[_crop((0.5, 1.0), 'bilinear')],
    # DetailCLIP (docs/methods.md 7.1): two i.i.d. views of this recipe, no flip
    detailclip=[_crop((0.14, 1.0), 'bicubic'), _color_jitter(0.2), _GRAY, _blur(0.1), _SOLARIZE],
    # SLIP's SimCLR views (docs/methods.md 4.1); torchvision's default bilinear interpolation
    slip_simclr=[_crop((0.08, 1.0), 'bilinear'), _color_jitter(0.4), _GRAY, _blur(0.5), _FLIP],
    # A-CLIP (docs/methods.md 6.1): colour only, the crops come from EnclosingCropTriplet; no flip (boxes must map)
    aclip_student=[_color_jitter(0.2), _GRAY, _blur(0.1), _SOLARIZE],
    aclip_teacher=[],
    # DINO / iBOT (docs/methods.md 8.2): after MultiCrop's crop
    dino_global1=[_FLIP, _color_jitter(0.2), _GRAY, _blur(1.0)],
    dino_global2=[_FLIP, _color_jitter(0.2), _GRAY, _blur(0.1), _SOLARIZE],
    dino_local=[_FLIP, _color_jitter(0.2), _GRAY, _blur(0.5)],
    # MAE (docs/methods.md 8.1) and the supervised baseline's crop: no colour augmentation
    mae=[_crop((0.2, 1.0), 'bicubic'), _FLIP],
    supervised=[_crop((0.08, 1.0), 'bicubic'), _FLIP],
)


def sized_recipe(name: str, size: Optional[int] = None) -> List[dict]:
    """A copy of ``RECIPES[name]`` whose RandomResizedCrop produces ``size`` x ``size`` views."""
    recipe = copy.deepcopy(RECIPES[name])
    for step in recipe:
        if step['type'] == 'RandomResizedCrop':
            if size is None:
                raise ValueError(f'recipe {name!r} crops: give its size')
            step['size'] = size
    return recipe
