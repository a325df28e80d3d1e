"""BEiT/iBOT block-wise masking for mask-token replacement."""
from typing import Optional, Sequence

import torch

from detailclip.registry import MODELS
from .base import Masker
from .ops import block_masks


@MODELS.register_module()
class BlockMask(Masker):
    """Block-wise masking of BEiT (arXiv 2106.08254) with iBOT's per-image ratio (arXiv 2111.07832).

    Per image: with probability ``mask_prob`` a target ratio ~ U(ratio) of the tokens is covered by random
    rectangles (area >= ``min_num_patches``, aspect log-uniform in ``aspect``), otherwise nothing is masked. The
    student replaces masked tokens by its mask token (``mode='replace'``), so rows may differ in count. Draws are
    seeded from torch's RNG (reproducible under ``torch.manual_seed``). The defaults are iBOT's released recipe
    (``pred_ratio 0 0.3``, ``pred_ratio_var 0 0.2``: half the images unmasked, the others U(0.1, 0.5)).

    Args:
        ratio (tuple[float, float]): Range of the per-image target ratio.
        mask_prob (float): Probability that an image is masked.
        min_num_patches (int, optional): Smallest rectangle area; (min(gh, gw) // 3)**2 when None (iBOT; BEiT: 16).
        aspect (tuple[float, float]): Range of the rectangles' height / width.
        apply_to (Sequence[int], optional): Student views to mask (all when None; iBOT: the global crops).
    """

    mode = 'replace'

    def __init__(self, ratio: Sequence[float] = (0.1, 0.5), mask_prob: float = 0.5,
                 min_num_patches: Optional[int] = None, aspect: Sequence[float] = (0.3, 1 / 0.3),
                 apply_to: Optional[Sequence[int]] = None):
        super().__init__(apply_to)
        if not 0 <= ratio[0] <= ratio[1] <= 1:
            raise ValueError(f'ratio must be a range (low, high) inside [0, 1], got {ratio}')
        self.ratio, self.mask_prob = tuple(ratio), mask_prob
        self.min_num_patches, self.aspect = min_num_patches, tuple(aspect)

    def mask_view(self, context: dict, view: int) -> torch.Tensor:
        """(B, N) bool, True = replaced by the mask token."""
        images = context['views'][view]
        masks = block_masks(images.shape[0], tuple(context['grid_sizes'][view]), self.ratio, self.mask_prob,
                            self.min_num_patches, self.aspect)
        return masks.to(images.device)
