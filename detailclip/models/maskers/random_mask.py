"""Random token removal (FLIP / MAE)."""
from typing import Optional, Sequence

import torch

from detailclip.registry import MODELS
from .base import Masker
from .ops import num_random_kept, random_mask


@MODELS.register_module()
class RandomMask(Masker):
    """Per-sample uniformly random token removal: FLIP (arXiv 2212.00794), MAE (arXiv 2111.06377).

    Each row keeps its floor(N (1 - ratio)) lowest-noise tokens, noise drawn on the view's device.

    Args:
        ratio (float): Fraction of patch tokens removed (FLIP 0.5, MAE 0.75).
        apply_to (Sequence[int], optional): Student views to mask (all when None).
    """

    def __init__(self, ratio: float = 0.5, apply_to: Optional[Sequence[int]] = None):
        super().__init__(apply_to)
        if not 0 <= ratio < 1:
            raise ValueError(f'ratio (the removed fraction) must be in [0, 1), got {ratio}')
        self.ratio = ratio

    def mask_view(self, context: dict, view: int) -> torch.Tensor:
        """(B, N) bool, True = removed, the same count in every row."""
        gh, gw = context['grid_sizes'][view]
        images = context['views'][view]
        return random_mask(images.shape[0], gh * gw, self.ratio, device=images.device)

    def num_masked(self, context: dict, view: int) -> int:
        gh, gw = context['grid_sizes'][view]
        return gh * gw - num_random_kept(gh * gw, self.ratio)
