"""MAE-style decoder and pixel head (MAE arXiv 2111.06377; DetailCLIP arXiv 2409.06809 docs/methods.md 7.2)."""
from functools import partial
from typing import List, Optional, Sequence, Union

import torch
from timm.layers import to_2tuple
from torch import nn

from detailclip.registry import MODELS
from ..encoders.batching import run_batched
from ..encoders.vit import CLSAttention, CLSAttentionBlock
from ..maskers.ops import removed_positions, take_rows
from ..ops import sincos_pos_embed_2d


def _xavier_linear(module: nn.Module) -> None:
    """MAE's init: xavier-uniform weights and zero biases for every Linear, unit/zero LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@MODELS.register_module()
class MAEDecoder(nn.Module):
    """Lightweight transformer decoder of MAE (He et al., arXiv 2111.06377), as used by DetailCLIP (arXiv 2409.06809).

    Projects the encoder tokens to the decoder width, puts each kept token back at its grid position and a learned
    mask token at every removed one, prepends the CLS token, adds a fixed 2-D sin-cos position embedding of the
    view's H x W grid, and runs ``depth`` pre-LN timm blocks and a final LayerNorm. DetailCLIP uses depth 1 at the
    vision width with 16 heads; MAE uses 8 blocks of width 512.

    Args:
        in_dim: Encoder token width D_enc.
        width: Decoder width D_dec.
        depth: Number of transformer blocks (0 allowed).
        num_heads: Attention heads per block.
        mlp_ratio: MLP hidden width over D_dec.
        grid_size: Usual patch grid (int or (gh, gw)); its position table is precomputed, other grids are computed
            at forward time.
    """

    def __init__(self, in_dim: int, width: int, depth: int, num_heads: int, mlp_ratio: float = 4.,
                 grid_size: Optional[Union[int, Sequence[int]]] = None):
        super().__init__()
        self.in_dim, self.width = in_dim, width
        self.decoder_embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_blocks = nn.ModuleList(
            [CLSAttentionBlock(width, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer,
                               attn_layer=CLSAttention) for _ in range(depth)])  # timm blocks (see CLSAttentionBlock)
        self.decoder_norm = norm_layer(width)
        self.grid_size = None if grid_size is None else tuple(to_2tuple(grid_size))
        # Fixed, not trained and not checkpointed: a function of the grid only.
        pos = None if grid_size is None else sincos_pos_embed_2d(self.grid_size, width)[None]
        self.register_buffer('pos_embed', pos, persistent=False)
        self.apply(_xavier_linear)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, tokens: torch.Tensor, ids_keep: Optional[torch.Tensor], grid: Sequence[int],
                removed_only: bool = False) -> torch.Tensor:
        """Decode a (possibly token-removed) view.

        Args:
            tokens: Encoder tokens (B, 1 + N_keep, D_enc), CLS first, after the encoder's final norm.
            ids_keep: (B, N_keep) grid positions of the kept tokens, or None when nothing was removed (then
                N_keep = N, e.g. mask-token replacement in the encoder).
            grid: Patch grid (gh, gw) of the view, N = gh*gw.
            removed_only: Return the removed positions only: the last block attends from those rows alone (every
                token still serves as key and value), so the kept rows skip its query, projection and MLP.

        Returns:
            Decoded tokens (B, 1 + N, D_dec), CLS first, patches in raster order; with ``removed_only`` the
            (B, N - N_keep, D_dec) tokens of the removed patches in ascending position order (the rows that
            ``decoded[:, 1:][mask]`` gives, same values).
        """
        if tokens.shape[-1] != self.in_dim:
            raise ValueError(f'MAEDecoder was built with in_dim={self.in_dim} but the encoder tokens have width '
                             f'{tokens.shape[-1]}: set the decoder in_dim to the encoder embed_dim')
        num_patches = grid[0] * grid[1]
        x = self.decoder_embed(tokens)
        x = torch.cat([x[:, :1], self._unshuffle(x[:, 1:], ids_keep, num_patches)], dim=1)
        x = x + self._pos_embed(grid, x.device)
        if removed_only and ids_keep is None:
            raise ValueError('MAEDecoder(removed_only=True) needs ids_keep, i.e. token removal; with mask-token '
                             'replacement decode every position (MAEObjective(decode_positions="all"))')
        rows = removed_positions(ids_keep, num_patches) + 1 if removed_only else None  # token rows: CLS is row 0
        return self.decoder_norm(self._run_blocks(x, rows))

    def forward_views(self, tokens: Sequence[torch.Tensor], ids_keep: Sequence[Optional[torch.Tensor]],
                      grids: Sequence[Sequence[int]], *, removed_only: bool = False) -> List[torch.Tensor]:
        """:meth:`forward` on every view, views of the same token shape and grid in one call.

        Args:
            tokens: Per view, encoder tokens ``(B, 1 + N_keep, D_enc)``.
            ids_keep: Per view, the kept positions ``(B, N_keep)`` or None.
            grids: Per view, the patch grid ``(gh, gw)``.
            removed_only: See :meth:`forward`.

        Returns:
            Per view, :meth:`forward`'s output.
        """
        inputs = [(t, ids, tuple(grid), removed_only) for t, ids, grid in zip(tokens, ids_keep, grids)]
        return run_batched(self, inputs, [(tuple(t.shape[1:]), ids is None, grid) for t, ids, grid, _ in inputs])

    def _run_blocks(self, x: torch.Tensor, rows: Optional[torch.Tensor]) -> torch.Tensor:
        """The blocks on (B, T, D_dec) tokens; with ``rows`` (B, Q) the output (B, Q, D_dec) at those rows only,
        computed for them alone by the last block."""
        blocks = list(self.decoder_blocks)
        for blk in blocks[:-1]:
            x = blk(x)
        if not blocks:
            return x if rows is None else take_rows(x, rows)
        return blocks[-1](x, rows=rows)

    def _unshuffle(self, kept: torch.Tensor, ids_keep: Optional[torch.Tensor], num_patches: int) -> torch.Tensor:
        """Kept tokens (B, N_keep, D_dec) at positions ``ids_keep``, mask tokens elsewhere -> (B, N, D_dec)."""
        if ids_keep is None:
            if kept.shape[1] != num_patches:
                raise ValueError(f'without ids_keep the decoder needs all {num_patches} patch tokens, '
                                 f'got {kept.shape[1]}')
            return kept
        if ids_keep.shape != kept.shape[:2]:
            raise ValueError(f'ids_keep {tuple(ids_keep.shape)} does not match the kept tokens {tuple(kept.shape)}')
        B, _, D = kept.shape
        # Out-of-place scatter: the result is a new tensor, so autograd keeps both inputs intact (Q-D2).
        base = self.mask_token.to(kept.dtype).expand(B, num_patches, D)
        return base.scatter(1, ids_keep.unsqueeze(-1).expand(-1, -1, D), kept)

    def _pos_embed(self, grid: Sequence[int], device: torch.device) -> torch.Tensor:
        """(1, 1 + gh*gw, D_dec) fixed position table of ``grid``, CLS row zero."""
        if self.pos_embed is not None and tuple(grid) == self.grid_size:
            return self.pos_embed
        return sincos_pos_embed_2d(grid, self.width, device=device)[None]


@MODELS.register_module()
class PixelHead(nn.Module):
    """Linear pixel predictor of MAE (arXiv 2111.06377): decoder tokens -> flattened patch pixels.

    Args:
        in_dim: Decoder width D_dec.
        patch_size: Patch side p.
        in_chans: Image channels C.
        init: ``'xavier'`` (MAE, clean default) or ``'default'`` (PyTorch default, the DetailCLIP reference; Q-D23).
    """

    def __init__(self, in_dim: int, patch_size: int, in_chans: int = 3, init: str = 'xavier'):
        super().__init__()
        if init not in ('xavier', 'default'):
            raise ValueError(f'unknown init {init!r}: use "xavier" or "default"')
        self.patch_size = patch_size
        self.proj = nn.Linear(in_dim, patch_size * patch_size * in_chans)
        if init == 'xavier':
            _xavier_linear(self.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D_dec) tokens -> (B, N, p*p*C) pixel predictions in :func:`patchify` order."""
        return self.proj(x)
