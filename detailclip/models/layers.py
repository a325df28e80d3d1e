"""Layers shared by heads: a BatchNorm whose batch statistics span every rank, on any backend."""
from typing import Tuple

import torch
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce

from detailclip.registry import MODELS
from detailclip.utils.dist import get_world_size


@MODELS.register_module()
class AllReduceBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d (Ioffe & Szegedy, arXiv 1502.03167) with batch statistics taken over all ranks.

    SLIP (arXiv 2112.12750) and A-CLIP (arXiv 2212.08653) use SyncBatchNorm in their MLP heads, but
    ``torch.nn.SyncBatchNorm`` rejects CPU tensors, so gloo runs fail. This layer sums per-channel moments with the
    autograd-aware ``torch.distributed.nn.functional.all_reduce``, which works on gloo and NCCL: the output and
    the input gradients on every rank equal those of one BatchNorm1d applied to the concatenated global batch.

    In training mode under a process group with W > 1 the global mean and biased variance normalise the input and
    the running statistics are updated as BatchNorm1d does (unbiased variance, ``momentum`` or, when None, a
    cumulative average). Otherwise (one process, eval mode) it is ``nn.BatchNorm1d`` exactly, with the same
    parameters and buffers, so state dicts are interchangeable. As with SyncBatchNorm, every rank must run the layer
    the same number of times per step, or the collectives hang.

    Args:
        num_features (int): Channels C of the (B, C) or (B, C, L) input.
        eps (float): Added to the variance for stability.
        momentum (float, optional): Running-statistics update factor; None for a cumulative average.
        affine (bool): Learn a per-channel scale and shift.
        track_running_stats (bool): Keep running statistics (eval mode uses them).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise (B, C) or (B, C, L) ``x`` per channel; returns the same shape and dtype."""
        batch_stats = self.training or self.running_mean is None  # BatchNorm's rule
        if not batch_stats or get_world_size() == 1:
            return super().forward(x)
        self._check_input_dim(x)
        shape = (1, -1) + (1, ) * (x.dim() - 2)
        # Half-precision inputs are normalised in fp32, as BatchNorm kernels do.
        x_f = x.to(torch.promote_types(x.dtype, torch.float32))
        mean, var, count = _global_moments(x_f)
        if self.training and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), count)
        y = (x_f - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        """BatchNorm's update from the global (C,) mean and biased variance over ``count`` rows."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_((var * count / (count - 1)).to(self.running_var.dtype), factor)


def _global_moments(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-channel mean and biased variance (C,) over every rank's rows, and the global row count ().

    Two passes (mean, then centred squares) avoid the cancellation of E[x^2] - E[x]^2; both reductions carry
    gradients back to every rank's input.
    """
    dims = [0] + list(range(2, x.dim()))
    shape = (1, -1) + (1, ) * (x.dim() - 2)
    count = x.new_tensor([x.numel() // x.shape[1]])
    total = all_reduce(torch.cat([x.sum(dims), count]))
    count = total[-1].detach()
    mean = total[:-1] / count
    var = all_reduce((x - mean.view(shape)).square().sum(dims)) / count
    return mean, var, count
