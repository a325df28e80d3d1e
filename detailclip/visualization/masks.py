"""What a pretrainer does to a batch, as images: the input, the EMA teacher's CLS attention, the kept/removed token
mask and the MAE reconstruction.

:func:`mask_panels` returns the panels by name, :func:`panel_grid` lays them out as one image for the batch: one row
per sample, one column per panel, left to right ``input | attention | mask | reconstruction`` (absent panels
dropped, see :data:`PANELS`), separated by white lines. For people, :func:`upscale` enlarges the panels and
:func:`titled_grid` puts each column's title (:data:`PANEL_TITLES`) above the grid.
"""
import contextlib
from typing import Dict, Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from detailclip.models.objectives import MAEObjective, select
from detailclip.models.ops import unpatchify

PANELS = ('input', 'attention', 'mask', 'reconstruction')
PANEL_TITLES = dict(input='input', attention='teacher attention', mask='kept / removed (grey)',
                    reconstruction='reconstruction')
GREY = 128.  # removed patches are blended towards this grey
REMOVED_BLEND = 0.7  # weight of the grey on removed patches
HEAT_BLEND = 0.5  # weight of the heat map over the teacher's view


@torch.no_grad()
def mask_panels(model: nn.Module, inputs: dict, num_images: int = 4) -> Dict[str, np.ndarray]:
    """The panels of the first ``num_images`` samples of a batch, computed in eval mode without gradients (the
    model's mode is restored; masks are drawn from torch's global RNG, which the caller may want to fork).

    The shown student view is the first masked one (view 0 when none is). Panels, each (K, H, W, 3) uint8 RGB:

    - ``input``: the view, de-normalised with the data preprocessor's mean and std.
    - ``attention``: the teacher's CLS attention over its view of the same index (its first view when it has fewer
      views), min-max scaled per image, upsampled bilinearly from the patch grid and blended over that view as a
      jet heat map. Only when the teacher runs (its size is the teacher view's).
    - ``mask``: the view with removed (or replaced) patches blended towards grey; kept patches are the input's.
    - ``reconstruction``: an :class:`MAEObjective`'s prediction of the removed patches (with ``norm_pix``
      de-normalised by each target patch's own mean and variance, as MAE's visualisation does) with the visible
      patches pasted from the input. Only when an MAE objective reconstructs the shown view.

    Args:
        model (ImageTextPretrainer): The (unwrapped) pretrainer.
        inputs (dict): The data preprocessor's ``inputs``: ``views`` [(B, 3, H, W)], optional ``teacher_views`` and
            ``boxes``; text is not read.
        num_images (int): K, how many samples to show (all when the batch is smaller).

    Returns:
        dict: Panels by name in :data:`PANELS` order; empty when there is nothing to show beyond the input (no
        teacher runs and no view is masked: CLIP, SLIP).
    """
    with _eval_mode(model):
        panels = _panels(model, model.image_context(_first(inputs, num_images)))
    if len(panels) == 1:
        return {}
    return {name: _to_uint8(panel) for name, panel in panels.items()}


def panel_grid(panels: Dict[str, np.ndarray], gap: int = 2) -> np.ndarray:
    """Lay out :func:`mask_panels`' output as one image: row k = sample k, columns in the dict's order.

    Args:
        panels (dict): Name -> (K, H_c, W_c, 3) uint8; each cell is the largest panel's size, smaller panels at its
            top left on black.
        gap (int): Width of the white lines between cells.

    Returns:
        ndarray: (K H + (K - 1) gap, C W + (C - 1) gap, 3) uint8, H and W the largest panel sides.
    """
    columns = list(panels.values())
    rows, height, width = len(columns[0]), max(p.shape[1] for p in columns), max(p.shape[2] for p in columns)
    grid = np.full((rows * (height + gap) - gap, len(columns) * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for c, column in enumerate(columns):
        for r, panel in enumerate(column):
            top, left = r * (height + gap), c * (width + gap)
            grid[top:top + height, left:left + width] = 0
            grid[top:top + panel.shape[0], left:left + panel.shape[1]] = panel
    return grid


def upscale(panels: Dict[str, np.ndarray], factor: int) -> Dict[str, np.ndarray]:
    """Every (K, H, W, 3) panel enlarged ``factor`` times by nearest neighbour, so each patch stays a sharp square."""
    return {name: panel.repeat(factor, axis=1).repeat(factor, axis=2) for name, panel in panels.items()}


def titled_grid(panels: Dict[str, np.ndarray], gap: int = 2) -> np.ndarray:
    """:func:`panel_grid` under a white strip with each column's title from :data:`PANEL_TITLES`, centred on the
    column (the font scales with the column width, at most 16 pixels)."""
    grid = panel_grid(panels, gap)
    width = max(p.shape[2] for p in panels.values())
    font = ImageFont.load_default(size=max(8, min(16, width // 12)))
    strip = Image.new('RGB', (grid.shape[1], 2 * font.size), 'white')
    draw = ImageDraw.Draw(strip)
    for c, name in enumerate(panels):
        draw.text((c * (width + gap) + width // 2, font.size), PANEL_TITLES[name], fill='black', font=font,
                  anchor='mm')
    return np.concatenate([np.asarray(strip), grid])


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the block with ``model`` in eval mode, then put back the mode it had."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _panels(model: nn.Module, context: dict) -> Dict[str, torch.Tensor]:
    """The panels of :func:`mask_panels` as (K, 3, H, W) 0-255 floats, from the model's image context."""
    masks = context['masks']
    view = next((v for v, m in enumerate(masks) if m is not None), 0)
    images = _denormalise(model, context['views'][view])
    panels = {'input': images}
    if context['teacher'] is not None:
        panels['attention'] = _attention_panel(model, context, view)
    if masks[view] is not None:
        panels['mask'] = _mask_panel(images, masks[view], tuple(context['grid_sizes'][view]))
        mae = _reconstructing(model, view, len(masks))
        if mae is not None:
            panels['reconstruction'] = _reconstruction_panel(model, mae, context, view)
    return panels


def _first(inputs: dict, num: int) -> dict:
    """The first ``num`` samples of every batched entry of the preprocessor's ``inputs``."""
    out = {key: [v[:num] for v in inputs[key]] for key in ('views', 'teacher_views') if inputs.get(key) is not None}
    if inputs.get('boxes') is not None:
        out['boxes'] = inputs['boxes'][:num]
    return out


def _denormalise(model: nn.Module, views: torch.Tensor) -> torch.Tensor:
    """(K, 3, H, W) normalised views -> the same on the 0-255 scale (float), with the preprocessor's mean/std."""
    preprocessor = model.data_preprocessor
    return views.float() * preprocessor.std + preprocessor.mean


def _attention_panel(model: nn.Module, context: dict, view: int) -> torch.Tensor:
    """(K, 3, H_t, W_t) 0-255 jet heat map of the teacher's CLS attention blended over its view."""
    cls_attn = context['teacher']['cls_attn']
    t = view if view < len(cls_attn) else 0
    encoded = t if model.teacher.views is None else model.teacher.views[t]  # the teacher may skip some views
    image = _denormalise(model, context['teacher_views'][encoded])
    patch = model.image_encoder.patch_embed.patch_size
    grid = (image.shape[-2] // patch[0], image.shape[-1] // patch[1])
    attn = cls_attn[t].float().reshape(-1, 1, *grid)
    low, high = attn.amin(dim=(2, 3), keepdim=True), attn.amax(dim=(2, 3), keepdim=True)
    attn = F.interpolate((attn - low) / (high - low).clamp_min(1e-12), size=image.shape[-2:], mode='bilinear',
                         align_corners=False)
    return (1 - HEAT_BLEND) * image + HEAT_BLEND * 255 * _jet(attn[:, 0].clamp(0, 1))


def _jet(x: torch.Tensor) -> torch.Tensor:
    """(K, H, W) values in [0, 1] -> (K, 3, H, W) jet colours in [0, 1] (blue = low, red = high)."""
    return torch.stack([(1.5 - (4 * x - c).abs()).clamp(0, 1) for c in (3, 2, 1)], dim=1)


def _mask_panel(images: torch.Tensor, mask: torch.Tensor, grid: tuple) -> torch.Tensor:
    """(K, 3, H, W) 0-255 images with the patches of the (K, N) mask (True = removed) blended towards grey."""
    removed = _patch_map(mask, grid, images.shape[-2:])
    return torch.where(removed, (1 - REMOVED_BLEND) * images + REMOVED_BLEND * GREY, images)


def _patch_map(mask: torch.Tensor, grid: tuple, size: tuple) -> torch.Tensor:
    """(K, N) per-patch bool -> (K, 1, H, W) per-pixel bool (each patch's value over its pixels)."""
    cells = mask.reshape(-1, 1, *grid).float()
    return F.interpolate(cells, size=tuple(size), mode='nearest').bool()


def _reconstructing(model: nn.Module, view: int, num_views: int) -> Optional[MAEObjective]:
    """The first :class:`MAEObjective` that reconstructs student view ``view``, or None."""
    return next((o for o in model.objectives.values()
                 if isinstance(o, MAEObjective) and view in select(range(num_views), o.views)), None)


def _reconstruction_panel(model: nn.Module, mae: MAEObjective, context: dict, view: int) -> torch.Tensor:
    """(K, 3, H, W) 0-255 image: the predicted pixels on the removed patches, the input's on the visible ones."""
    target, pred = mae.target(context, view), mae.reconstruct(context, view).float()
    if mae.loss.norm_pix:  # undo the loss's per-patch standardisation with the target patch's own statistics
        pred = pred * (target.var(dim=-1, keepdim=True) + mae.loss.eps).sqrt() + target.mean(dim=-1, keepdim=True)
    patches = torch.where(context['masks'][view][..., None], pred, target)
    return _denormalise(model, unpatchify(patches, mae.patch_size, context['grid_sizes'][view]))


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """(K, 3, H, W) 0-255 float -> (K, H, W, 3) uint8 RGB array on the host."""
    return images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
