"""Pure token and patch operations shared by heads, losses and objectives.

Patches are in raster order over the (gh, gw) patch grid; a patch vector lists its pixels as (row-in-patch,
column-in-patch, channel), the order of MAE (arXiv 2111.06377) and of the DetailCLIP reference.
"""
from typing import Sequence

import torch


def patchify(imgs: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into flattened non-overlapping patches.

    Args:
        imgs: Images (B, C, H, W); H and W must be multiples of ``patch``.
        patch: Patch side p.

    Returns:
        Patches (B, N, p*p*C), N = (H/p)*(W/p) in raster order.
    """
    B, C, H, W = imgs.shape
    if H % patch or W % patch:
        raise ValueError(f'image size {(H, W)} is not divisible by patch size {patch}')
    gh, gw = H // patch, W // patch
    x = imgs.reshape(B, C, gh, patch, gw, patch)
    return torch.einsum('bchpwq->bhwpqc', x).reshape(B, gh * gw, patch * patch * C)


def unpatchify(patches: torch.Tensor, patch: int, grid: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: Patches (B, N, p*p*C), N = gh*gw.
        patch: Patch side p.
        grid: Patch grid (gh, gw).

    Returns:
        Images (B, C, gh*p, gw*p).
    """
    B, N, P = patches.shape
    gh, gw = grid
    if N != gh * gw or P % (patch * patch):
        raise ValueError(f'patches {tuple(patches.shape)} do not fit grid {tuple(grid)} with patch size {patch}')
    C = P // (patch * patch)
    x = patches.reshape(B, gh, gw, patch, patch, C)
    return torch.einsum('bhwpqc->bchpwq', x).reshape(B, C, gh * patch, gw * patch)


def sincos_pos_embed_2d(grid: Sequence[int], dim: int, cls_token: bool = True,
                        device: torch.device = None) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding of an H x W grid (MAE's ``get_2d_sincos_pos_embed``).

    The first dim/2 channels encode the column, the last dim/2 the row; each half is [sin(pos*w_k), cos(pos*w_k)]
    with w_k = 10000^(-k/(dim/4)), k < dim/4. On a square grid this equals MAE's table.

    Args:
        grid: Patch grid (gh, gw).
        dim: Embedding width, a multiple of 4.
        cls_token: Prepend an all-zero row for the CLS token.
        device: Device of the result.

    Returns:
        Float32 table (cls_token + gh*gw, dim), patches in raster order.
    """
    if dim % 4:
        raise ValueError(f'the 2-D sin-cos embedding needs a width divisible by 4, got {dim}')
    gh, gw = grid
    rows, cols = torch.meshgrid(torch.arange(gh, dtype=torch.float32, device=device),
                                torch.arange(gw, dtype=torch.float32, device=device), indexing='ij')
    emb = torch.cat([_sincos_1d(cols.reshape(-1), dim // 2), _sincos_1d(rows.reshape(-1), dim // 2)], dim=1)
    if cls_token:
        emb = torch.cat([emb.new_zeros(1, dim), emb], dim=0)
    return emb


def _sincos_1d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """(M,) positions -> (M, dim) table [sin(pos*w), cos(pos*w)], w_k = 10000^(-2k/dim)."""
    omega = 1. / 10000 ** (torch.arange(dim // 2, dtype=torch.float32, device=pos.device) / (dim / 2.))
    out = pos[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1)
