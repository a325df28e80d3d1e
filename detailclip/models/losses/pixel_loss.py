"""Masked pixel reconstruction loss of MAE."""
from typing import Optional

import torch
from torch import nn

from detailclip.registry import MODELS


@MODELS.register_module()
class PixelReconLoss(nn.Module):
    """Mean squared error on the removed patches (MAE, He et al., arXiv 2111.06377; DetailCLIP arXiv 2409.06809).

    ``loss = sum_{b,n} M_bn * mean_d (pred - target)^2 / sum_{b,n} M_bn``: the mean over every removed patch of the
    batch. With ``norm_pix`` each target patch is standardised by its own mean and unbiased variance,
    (x - mu) / sqrt(var + eps), as MAE and the DetailCLIP reference do.

    Args:
        norm_pix: Standardise each target patch.
        eps: Added to the variance.
    """

    def __init__(self, norm_pix: bool = True, eps: float = 1e-6):
        super().__init__()
        self.norm_pix = norm_pix
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred: Predicted patches (B, N, P).
            target: Target patches (B, N, P), e.g. ``patchify(images, p)``.
            mask: Bool (B, N), True = removed (where the loss is taken); None when ``pred`` and ``target`` hold the
                removed patches only (every patch counts).

        Returns:
            () the mean per-patch MSE over removed patches; 0 when nothing is removed.
        """
        if pred.shape != target.shape or (mask is not None and mask.shape != pred.shape[:2]):
            raise ValueError(f'pred {tuple(pred.shape)}, target {tuple(target.shape)} and mask '
                             f'{None if mask is None else tuple(mask.shape)} must be (B, N, P), (B, N, P) and (B, N)')
        # fp32 even under autocast: per-patch statistics of P values are the numerically delicate part.
        pred, target = pred.float(), target.float()
        if self.norm_pix:
            target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + self.eps).sqrt()
        per_patch = (pred - target).pow(2).mean(dim=-1)
        if mask is None:
            return per_patch.sum() / max(per_patch.numel(), 1)
        weights = mask.to(pred.dtype)
        return (per_patch * weights).sum() / weights.sum().clamp_min(1)
