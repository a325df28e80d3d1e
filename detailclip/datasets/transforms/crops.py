"""View transforms that own their crop geometry: A-CLIP's student/teacher triplet (with boxes) and multi-crop.

Boxes are ``(top, left, height, width)`` in source pixels, the order ``RandomResizedCrop.get_params`` returns.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms.v2 import functional as F

from detailclip.registry import TRANSFORMS
from .augment import RECIPES
from .views import build_view, crop_source_side, views_source_side

Box = Tuple[int, int, int, int]
Size = Union[int, Tuple[int, int]]


def _randint(low: int, high: int, draw: bool) -> int:
    """Uniform integer in ``[low, high]``, or ``low`` without touching the RNG when ``draw`` is False."""
    return int(torch.randint(low, high + 1, (1, ))) if draw else low


def enclosing_box(boxes: Sequence[Box], height: int, width: int, legacy_union_bug: bool = False) -> Box:
    """A random box inside the ``height`` x ``width`` image that contains both student boxes.

    top ~ U{0..min top}, left ~ U{0..min left}, bottom ~ U{max bottom..H}, right ~ U{max right..W}. The RNG is drawn
    exactly where A-CLIP's ``GetThreeRandomResizedCrop`` draws it, so under the same torch seed the legacy sampler
    returns the reference's boxes.

    Args:
        boxes (Sequence[Box]): The two student boxes.
        height (int): Source image height.
        width (int): Source image width.
        legacy_union_bug (bool): Reproduce the reference's two bugs (docs/methods.md 6.1, Q-D15): the union's left edge
            is ``min(left_1, height_2)``, and the minimum height/width are measured from the union's top/left
            before those move outward, so the box often stops short of the union.

    Returns:
        Box: ``(top, left, height, width)``.
    """
    (i1, j1, h1, w1), (i2, j2, h2, w2) = boxes
    union_top, union_left = min(i1, i2), min(j1, h2 if legacy_union_bug else j2)
    bottom, right = max(i1 + h1, i2 + h2), max(j1 + w1, j2 + w2)
    top = _randint(0, union_top, union_top > 0)
    left = _randint(0, union_left, union_left > 0)
    size_from = (union_top, union_left) if legacy_union_bug else (top, left)
    min_h, min_w = bottom - size_from[0], right - size_from[1]
    return top, left, _randint(min_h, height - top, min_h < height), _randint(min_w, width - left, min_w < width)


def _pair(size: Size) -> List[int]:
    return [size, size] if isinstance(size, int) else list(size)


@TRANSFORMS.register_module()
class EnclosingCropTriplet:
    """A-CLIP's views (arXiv 2212.08653): two student crops and a "zoom-out" teacher crop enclosing both.

    ``results['img']`` (PIL) -> ``results['views']`` (two student (3, H, W) uint8 tensors),
    ``results['teacher_views']`` ([teacher (3, H_t, W_t) uint8]) and ``results['boxes']`` ((3, 4) float32: the
    students' boxes, then the teacher's, in source pixels), which map the teacher's attention onto each student
    crop (docs/methods.md 6.1, 6.3). Nothing flips, or the boxes would no longer map.

    Args:
        size (int | tuple[int, int]): Student view size.
        scale (tuple[float, float]): RandomResizedCrop area range of the student boxes.
        ratio (tuple[float, float]): RandomResizedCrop aspect-ratio range of the student boxes.
        interpolation (str): Resize interpolation of all three crops.
        student_recipe (list[dict], optional): Transforms after each student crop; default ``RECIPES['aclip_student']``.
        teacher_recipe (list[dict], optional): Transforms after the teacher crop; default none (``'aclip_teacher'``).
        teacher_size (int | tuple[int, int], optional): Teacher view size; default ``size``.
        legacy_union_bug (bool): Sample the teacher box as the reference does (see :func:`enclosing_box`).
    """

    def __init__(self, size: Size, scale: Tuple[float, float] = (0.5, 1.0), ratio: Tuple[float, float] = (3 / 4, 4 / 3),
                 interpolation: str = 'bilinear', student_recipe: Optional[Sequence[dict]] = None,
                 teacher_recipe: Optional[Sequence[dict]] = None, teacher_size: Optional[Size] = None,
                 legacy_union_bug: bool = False):
        self.size, self.teacher_size = _pair(size), _pair(teacher_size or size)
        self.scale, self.ratio = list(scale), list(ratio)
        self.interpolation = InterpolationMode(interpolation)
        self.student_view = build_view(RECIPES['aclip_student'] if student_recipe is None else student_recipe)
        self.teacher_view = build_view(RECIPES['aclip_teacher'] if teacher_recipe is None else teacher_recipe)
        self.legacy_union_bug = legacy_union_bug
        # the teacher box encloses both student boxes: none of its sides is shorter than the smallest student crop's
        self.source_side = crop_source_side(max(self.size + self.teacher_size), scale, ratio)

    def __call__(self, results: dict) -> dict:
        img = results['img']
        students = [RandomResizedCrop.get_params(img, self.scale, self.ratio) for _ in range(2)]
        teacher = enclosing_box(students, img.height, img.width, self.legacy_union_bug)
        results['views'] = [self.student_view(self._crop(img, box, self.size)) for box in students]
        results['teacher_views'] = [self.teacher_view(self._crop(img, teacher, self.teacher_size))]
        results['boxes'] = torch.tensor([*students, teacher], dtype=torch.float32)
        return results

    def _crop(self, img: Image.Image, box: Box, size: List[int]) -> Image.Image:
        return F.resized_crop(img, *box, size=size, interpolation=self.interpolation, antialias=True)


@TRANSFORMS.register_module()
class MultiCrop:
    """DINO / iBOT multi-crop (arXiv 2104.14294, 2111.07832): global views, then smaller local views.

    ``results['img']`` -> ``results['views']``: ``n_global`` (3, H_g, W_g) uint8 views, global view k after
    ``global_recipes[k % len(global_recipes)]`` (DINO: always-blurred, then blurred 0.1 + solarized 0.2), then
    ``n_local`` (3, H_l, W_l) views after ``local_recipe``; each view is a RandomResizedCrop then its recipe.

    Args:
        global_size (int | tuple[int, int]): Global view size.
        local_size (int | tuple[int, int], optional): Local view size (needed when ``n_local > 0``).
        n_global (int): Number of global views.
        n_local (int): Number of local views.
        global_scale (tuple[float, float]): Area range of the global crops (iBOT's default 0.14-1).
        local_scale (tuple[float, float]): Area range of the local crops.
        ratio (tuple[float, float]): Aspect-ratio range of every crop.
        interpolation (str): Resize interpolation (bicubic in DINO/iBOT).
        global_recipes (list[list[dict]], optional): Default ``RECIPES['dino_global1']``, ``RECIPES['dino_global2']``.
        local_recipe (list[dict], optional): Default ``RECIPES['dino_local']``.
    """

    def __init__(self, global_size: Size, local_size: Optional[Size] = None, n_global: int = 2, n_local: int = 0,
                 global_scale: Tuple[float, float] = (0.14, 1.0), local_scale: Tuple[float, float] = (0.05, 0.4),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), interpolation: str = 'bicubic',
                 global_recipes: Optional[Sequence[Sequence[dict]]] = None,
                 local_recipe: Optional[Sequence[dict]] = None):
        if n_local > 0 and local_size is None:
            raise ValueError('MultiCrop: n_local > 0 needs local_size')
        global_recipes = global_recipes or [RECIPES['dino_global1'], RECIPES['dino_global2']]
        local_recipe = RECIPES['dino_local'] if local_recipe is None else local_recipe

        def view(size: Size, scale: Tuple[float, float], recipe: Sequence[dict]) -> List[dict]:
            crop = dict(type='RandomResizedCrop', size=size, scale=scale, ratio=ratio, interpolation=interpolation,
                        antialias=True)
            return [crop, *recipe]

        recipes = [view(global_size, global_scale, global_recipes[k % len(global_recipes)]) for k in range(n_global)]
        recipes += [view(local_size, local_scale, local_recipe) for _ in range(n_local)]
        self.views = [build_view(recipe) for recipe in recipes]
        self.source_side = views_source_side(recipes)  # read by plan_decoding

    def __call__(self, results: dict) -> dict:
        results['views'] = [view(results['img']) for view in self.views]
        return results
