"""Masker contract.

A masker decides, per student view, which patch tokens the student does not see: a bool mask (B, N) with the
project-wide convention **True = removed** (or replaced by a mask token, then also where MIM/pixel losses are taken),
False = kept. ``mode`` says whether the encoder drops the masked tokens (``'remove'``, MAE/FLIP/A-CLIP/DetailCLIP) or
swaps in its learned mask token (``'replace'``, BEiT/iBOT). Grid sizes come from the context (the encoder's patch grid
of each view), never from literals.

Context entries a masker may read (see :mod:`detailclip.models.objectives.base`): ``views``, ``grid_sizes`` (list of
(gh, gw) per student view), ``teacher`` (``cls_attn`` per teacher view), ``boxes``; and ``training`` (bool).
"""
from typing import List, Optional, Sequence

import torch
from torch import nn

from detailclip.registry import MODELS


class Masker(nn.Module):
    """Base class.

    Args:
        apply_to (Sequence[int], optional): Student views to mask (all when None); the others get None (unmasked).

    Attributes:
        mode (str): ``'remove'`` or ``'replace'``.
        needs_teacher (bool): Reads the teacher's CLS attention, so the teacher must run.
    """

    mode = 'remove'
    needs_teacher = False

    def __init__(self, apply_to: Optional[Sequence[int]] = None):
        super().__init__()
        self.apply_to = None if apply_to is None else list(apply_to)

    def forward(self, context: dict) -> List[Optional[torch.Tensor]]:
        """One (B, N) bool mask (True = removed) or None per student view."""
        views = range(len(context['views'])) if self.apply_to is None else self.apply_to
        masks = [None] * len(context['views'])
        for v in views:
            masks[v] = self.mask_view(context, v)
        return masks

    def mask_view(self, context: dict, view: int) -> torch.Tensor:
        """(B, N) bool mask of student view ``view``."""
        raise NotImplementedError

    def num_masked(self, context: dict, view: int) -> Optional[int]:
        """How many tokens every row of view ``view``'s mask masks, when the masker fixes that count (from its
        settings and the view's grid, without reading the mask), else None. The encoder's token removal and the
        selection of the masked positions use it to avoid reading the mask back to the host."""
        return None


@MODELS.register_module()
class NoMask(Masker):
    """Every student view unmasked (CLIP arXiv 2103.00020, SLIP, DINO): the same as configuring no masker."""

    def mask_view(self, context: dict, view: int) -> None:
        return None
