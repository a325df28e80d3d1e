"""Collectives as free functions that also work without a process group.

Rank and world size are read from ``torch.distributed`` at every call (never cached), so the same code runs in
a single process, under DDP, and in tests that monkeypatch these functions. With no initialised process group
the world size is 1 and every collective returns its input.

Notation: B = per-rank batch, W = world size, r = rank. Gathered tensors are stacked in rank order, so rows
``r * B : (r + 1) * B`` of a gathered tensor are rank r's input.
"""
import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ['get_rank', 'get_world_size', 'gather_features', 'all_reduce_mean']


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Rank of this process in the default group, 0 without a process group."""
    return dist.get_rank() if _initialized() else 0


def get_world_size() -> int:
    """Number of processes in the default group, 1 without a process group."""
    return dist.get_world_size() if _initialized() else 1


def _all_gather_cat(x: Tensor) -> Tensor:
    """Plain (non-differentiable) all_gather of (B, ...) into (W*B, ...), rank order."""
    chunks = [torch.empty_like(x) for _ in range(get_world_size())]
    dist.all_gather(chunks, x)
    return torch.cat(chunks, dim=0)


def _check_same_batch(x: Tensor) -> None:
    """Fail on every rank if the leading dims differ across ranks.

    The sizes are compared on ``x.device`` with an asynchronous assert, so the check costs one tiny collective
    but no host-device sync; on CPU it raises at once, on an accelerator at the next kernel launch.
    """
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = _all_gather_cat(size)
    torch._assert_async((sizes == size).all(),
                        'gather_features: the leading (batch) dim must be the same on every rank '
                        '(use drop_last=True in the sampler)')


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient of each slot and keeps the caller's slot."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.batch = x.shape[0]
        return _all_gather_cat(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # Rank q's loss depends on our rows through its gathered copy: summing over ranks gives our rows'
        # full gradient of sum_q L_q (DDP's averaging then turns it into the gradient of the mean loss).
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = get_rank() * ctx.batch
        return grad[start:start + ctx.batch]


def gather_features(x: Tensor, with_grad: bool = True) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, in rank order.

    Args:
        x (Tensor): (B, ...) local features; B must be the same on every rank (checked, see below).
        with_grad (bool): gradient mode of the gathered tensor when W > 1.

            * ``True`` (A-CLIP / DetailCLIP): backward all-reduces (sums) the incoming gradient over ranks and
              returns rows ``r*B:(r+1)*B``. Every row of x receives its gradient from the losses on all ranks;
              with DDP's gradient averaging this is exactly the gradient of the mean of the per-rank losses,
              i.e. of the single-process loss on the concatenated batch.
            * ``False`` (SLIP's ``CLIPLoss``): a plain all_gather; the whole result, the caller's own rows
              included, is a constant. A loss built as ``query_local @ gather_features(key).T`` then sends
              each embedding only the query-side gradient of its own rows. Unlike open_clip, the local rows
              are NOT re-attached, matching SLIP.

    Returns:
        Tensor: (W*B, ...) gathered features. For W == 1 (or no process group) ``x`` itself is returned in
        both modes, as SLIP's ``all_gather_batch`` does, so single-process gradients are the full ones.

    Raises:
        RuntimeError: on every rank when the ranks' B differ (asynchronously on accelerators).
    """
    if get_world_size() == 1:
        return x
    x = x.contiguous()
    _check_same_batch(x)
    if with_grad:
        return _GatherWithGrad.apply(x)
    return _all_gather_cat(x.detach())


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over ranks, without modifying ``x``.

    Args:
        x (Tensor): (...) any tensor with the same shape on every rank.

    Returns:
        Tensor: (...) the element-wise mean over ranks, detached (meant for statistics such as iBOT centres).
        For W == 1 it is ``x.detach()``.
    """
    world_size = get_world_size()
    if world_size == 1:
        return x.detach()
    total = x.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / world_size
