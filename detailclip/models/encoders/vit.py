"""Vision Transformer image encoder with masked forwards and a CLS-attention score.

Mask convention (project-wide): a boolean mask ``(B, N)`` over the patch tokens in raster order, where
``True`` (1) marks a token that is removed from (or replaced in) the student input and ``False`` (0) one
that is kept.

The encoder subclasses timm's ``VisionTransformer``, so parameter names (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``) and the timm
method surface stay unchanged and timm checkpoints load strictly. The only additions go through timm's own
``block_fn``/``attn_layer`` constructor hooks: an attention layer that can also return the CLS query row of
the attention probabilities, computed separately from the fused ``scaled_dot_product_attention`` call so
that the full ``(B, heads, T, T)`` matrix is never materialised. The score is a running sum of each block's CLS
row; the reference stacks every block's full attention instead (docs/methods.md Q-D4), the benchmark's naive way
(``tools/analysis/naive.py``).
"""
from contextlib import contextmanager
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts
from timm.layers import Mlp, maybe_add_mask, resample_abs_pos_embed, resolve_self_attn_mask, to_2tuple, trunc_normal_
from timm.models.vision_transformer import Attention, Block
from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
from torch import nn

from detailclip.registry import MODELS
from ..attention import attention, attention_probs
from ..maskers.ops import sorted_positions, take_rows
from .batching import run_batched

Size2 = Union[int, Sequence[int]]
ATTN_IMPLS = ('sdpa', 'manual')


def set_attn_impl(module: nn.Module, attn_impl: str) -> None:
    """Run every timm ``Attention`` in ``module`` (encoders, the teacher's copies, decoder blocks) through fused
    ``scaled_dot_product_attention`` (``'sdpa'``) or the materialised softmax(q k^T) (``'manual'``), by timm's own
    ``fused_attn`` flag. Both give the same outputs; ``'manual'`` is timm's unfused path (the reference's timm 0.5.4
    attention), for backends without a fused kernel or to debug the probabilities.
    """
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f'unknown attn_impl {attn_impl!r}: use one of {ATTN_IMPLS}')
    for m in module.modules():
        if isinstance(m, Attention):
            m.fused_attn = attn_impl == 'sdpa'


class CLSAttention(Attention):
    """timm ``Attention`` that can also return the CLS query's attention probabilities.

    With timm's ``fused_attn`` flag on (``attn_impl='sdpa'``, the default) the output comes from
    :func:`~detailclip.models.attention.attention` (``F.scaled_dot_product_attention``; bf16 matmuls a few samples at
    a time on a CPU) and the CLS row is a separate ``(B, heads, 1, T)`` product, so the score costs O(T) per head and
    no (T, T) map is kept or stacked. With it off (``'manual'``)
    softmax(q k^T) ``(B, heads, T, T)`` is materialised, as timm's unfused path does, and the CLS row is read from it.
    """

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None, is_causal: bool = False,
                return_cls_attn: bool = False,
                rows: Optional[torch.Tensor] = None) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Multi-head self-attention.

        Args:
            x: Tokens ``(B, T, C)``, the CLS token first.
            attn_mask: Optional mask broadcastable to ``(B, heads, T, T)``; not supported with ``return_cls_attn``.
            is_causal: Causal attention (timm signature); not supported with ``return_cls_attn``.
            return_cls_attn: Also return the CLS row of the post-softmax attention.
            rows: Optional ``(B, Q)`` token indices: outputs at those rows only (their queries against the keys and
                values of all T tokens), so the other rows cost neither a query nor an output projection.

        Returns:
            Output tokens ``(B, T, C)`` (``(B, Q, C)`` with ``rows``), and with ``return_cls_attn`` also the fp32
            probabilities ``(B, heads, T)`` from the CLS query to every key (CLS key included, so each row sums to 1).
        """
        if return_cls_attn and (attn_mask is not None or is_causal or rows is not None):
            raise NotImplementedError('return_cls_attn does not support attn_mask, is_causal or rows')
        x_out = x if rows is None else take_rows(x, rows)
        gate = self.gate(x_out).sigmoid() if getattr(self, 'gate', None) is not None else None
        q, k, v = self._qkv(x, None if rows is None else x_out)
        if self.fused_attn:
            out, attn = attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.,
                is_causal=is_causal), None
        else:
            out, attn = self._manual_attention(q, k, v, attn_mask, is_causal)
        out = self._project(out.transpose(1, 2).flatten(2), gate)
        return (out, self._cls_attn(q, k, attn)) if return_cls_attn else out

    def _cls_attn(self, q: torch.Tensor, k: torch.Tensor, attn: Optional[torch.Tensor]) -> torch.Tensor:
        """The fp32 CLS row ``(B, heads, T)`` of the probabilities: read from ``attn`` ``(B, heads, T, T)`` when it
        was materialised, else the CLS query ``(B, heads, 1, hd)`` of ``q`` against the keys ``k`` ``(B, heads, T, hd)``
        in fp32, so that autocast does not bias the score."""
        if attn is None:
            attn = attention_probs(q[:, :, :1].float(), k.float())
        return attn[:, :, 0].float()

    def _qkv(self, x: torch.Tensor, x_rows: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normed queries ``(B, heads, Q, hd)`` of ``x_rows`` (of ``x`` when None: Q = T) and keys and values
        ``(B, heads, T, hd)`` of ``x`` ``(B, T, C)``, from the one ``qkv`` layer."""
        B, T, _ = x.shape
        if x_rows is None:
            q, k, v = self.qkv(x).reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            inner = self.num_heads * self.head_dim
            weight_q, weight_kv = self.qkv.weight.split([inner, 2 * inner])
            bias_q, bias_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([inner, 2 * inner])
            q = F.linear(x_rows, weight_q, bias_q).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
            k, v = F.linear(x, weight_kv, bias_kv).reshape(B, T, 2, self.num_heads, self.head_dim).permute(
                2, 0, 3, 1, 4).unbind(0)
        return self.q_norm(q), self.k_norm(k), v

    def _manual_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Optional[torch.Tensor],
                          is_causal: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """timm's unfused path: ``(attn @ v, attn)`` with attn = softmax(q k^T / sqrt(hd)) ``(B, heads, T, T)``.

        Args:
            q: Queries ``(B, heads, Q, hd)`` (Q = T unless only some rows are asked for).
            k: Keys ``(B, heads, T, hd)``.
            v: Values ``(B, heads, T, hd)``.
            attn_mask: Optional mask (timm signature).
            is_causal: Causal attention.

        Returns:
            Outputs ``(B, heads, Q, hd)`` and the post-softmax probabilities ``(B, heads, Q, T)``, in the compute
            dtype.
        """
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = maybe_add_mask(attn, resolve_self_attn_mask(q.shape[2], attn, attn_mask, is_causal)).softmax(dim=-1)
        return self.attn_drop(attn) @ v, attn

    def _project(self, x: torch.Tensor, gate: Optional[torch.Tensor]) -> torch.Tensor:
        """Apply timm's post-attention norm, optional gate and output projection to ``(B, T, heads*hd)``."""
        x = self.norm(x)
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


@contextmanager
def recompute_in_backward(tensor: torch.Tensor, recompute: Callable[[], torch.Tensor], enabled: bool = True):
    """Inside, autograd keeps a recipe instead of ``tensor`` (or a view of it) for backward: ``recompute()`` rebuilds
    it then, under the autocast state of this forward. For cheap elementwise outputs (LayerNorm, GELU) whose inputs
    autograd keeps anyway; the values are identical, no matmul is recomputed.

    Args:
        tensor: The output whose storage is not to be kept, e.g. ``(B, T, C)``.
        recompute: Rebuilds ``tensor`` (same values, dtype and layout) from tensors autograd keeps anyway.
        enabled: False: a no-op context.
    """
    if not enabled:
        yield
        return
    device, dtype, ptr = tensor.device.type, tensor.dtype, tensor.untyped_storage().data_ptr()
    autocast = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))

    def pack(saved: torch.Tensor):
        if saved.untyped_storage().data_ptr() != ptr or saved.dtype != dtype:
            return saved
        return saved.shape, saved.stride(), saved.storage_offset()

    def unpack(packed):
        if isinstance(packed, torch.Tensor):
            return packed
        with torch.autocast(device, dtype=autocast[1], enabled=autocast[0]):
            return recompute().as_strided(*packed)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


_MATMUL_OPS = tuple(getattr(torch.ops.aten, name).default for name in (
    'mm', 'addmm', 'bmm', 'baddbmm', '_scaled_dot_product_flash_attention_for_cpu',
    '_scaled_dot_product_flash_attention', '_scaled_dot_product_efficient_attention',
    '_scaled_dot_product_cudnn_attention') if hasattr(torch.ops.aten, name))


def _keep_matmul_outputs(ctx, op, *args, **kwargs) -> CheckpointPolicy:
    """Selective-checkpoint policy: keep what matmuls, attention kernels and random ops produce, recompute the rest."""
    if op in _MATMUL_OPS or torch.Tag.nondeterministic_seeded in getattr(op, 'tags', ()):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def run_recomputing_norm_act(block: nn.Module, forward: Callable, *args, **kwargs):
    """``forward(*args, **kwargs)`` of a block whose ``recompute_norm_act`` is on, as torch.compile sees it.

    In eager mode the block's own :func:`recompute_in_backward` contexts drop its LayerNorm and activation outputs.
    Their saved-tensor hooks do not trace, so inside a compiled region the forward runs under a selective-checkpoint
    policy instead that keeps only the outputs of matmuls and attention kernels for backward: the partitioner then
    recomputes the norms, casts and activations (elementwise work, fused), and no matmul runs twice.
    """
    if block.recompute_norm_act and torch.is_grad_enabled() and torch.compiler.is_compiling():
        return torch.utils.checkpoint.checkpoint(
            forward, *args, use_reentrant=False, **kwargs,
            context_fn=partial(create_selective_checkpoint_contexts, _keep_matmul_outputs))
    return forward(*args, **kwargs)


class CLSAttentionBlock(Block):
    """timm pre-LN ``Block`` whose forward can pass through the CLS attention of ``CLSAttention``.

    With ``recompute_norm_act`` (a plain attribute, on unless the encoder or a caller switches it off) the outputs of
    both LayerNorms and of the MLP activation are not stored for backward but recomputed from their inputs
    (:func:`recompute_in_backward`; under torch.compile :func:`run_recomputing_norm_act`): 10 instead of 16 floats per
    token and channel stay alive per block, for three elementwise passes in backward. Under autocast each LayerNorm
    output is cast to the autocast dtype here, as the next linear layer would.
    """

    recompute_norm_act = True

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None, is_causal: bool = False,
                return_cls_attn: bool = False,
                rows: Optional[torch.Tensor] = None) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Run the block.

        Args:
            x: Tokens ``(B, T, C)``.
            attn_mask: Optional attention mask (timm signature).
            is_causal: Causal attention (timm signature).
            return_cls_attn: Also return the CLS attention ``(B, heads, T)`` of this block.
            rows: Optional ``(B, Q)`` token indices: the block's outputs at those rows only (attention over all T
                tokens; the MLP and projections run on Q rows).

        Returns:
            Tokens ``(B, T, C)`` (``(B, Q, C)`` with ``rows``), plus the CLS attention when asked.
        """
        return run_recomputing_norm_act(self, self._forward, x, attn_mask=attn_mask, is_causal=is_causal,
                                        return_cls_attn=return_cls_attn, rows=rows)

    def _forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor], is_causal: bool, return_cls_attn: bool,
                 rows: Optional[torch.Tensor]):
        """:meth:`forward`'s body."""
        recompute = self.recompute_norm_act and torch.is_grad_enabled() and not torch.compiler.is_compiling()
        h = autocast_input(self.norm1(x))
        with recompute_in_backward(h, lambda x=x: autocast_input(self.norm1(x)), recompute):
            out = self.attn(h, attn_mask=attn_mask, is_causal=is_causal, return_cls_attn=return_cls_attn, rows=rows)
        y, attn = out if isinstance(out, tuple) else (out, None)
        x = x if rows is None else take_rows(x, rows)
        x = x + self.drop_path1(self.ls1(y))
        x = x + self.drop_path2(self.ls2(self._mlp(x, recompute)))
        return x if attn is None else (x, attn)

    def _mlp(self, x: torch.Tensor, recompute: bool) -> torch.Tensor:
        """timm's ``Mlp`` on ``norm2(x)`` ``(B, T, C)``, its LayerNorm and activation outputs recomputed in backward
        when asked (the activation only when no dropout or norm sits between it and ``fc2``)."""
        mlp = self.mlp
        if type(mlp) is not Mlp:
            return mlp(self.norm2(x))
        h = autocast_input(self.norm2(x))
        with recompute_in_backward(h, lambda: autocast_input(self.norm2(x)), recompute):
            hidden = mlp.fc1(h)
        act = mlp.act(hidden)
        plain = isinstance(mlp.norm, nn.Identity) and mlp.drop1.p == 0
        with recompute_in_backward(act, lambda: mlp.act(hidden), recompute and plain):
            return mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(act))))


def autocast_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the autocast dtype when autocast is on for its device (what the next linear layer would make)."""
    device = x.device.type
    return x.to(torch.get_autocast_dtype(device)) if torch.is_autocast_enabled(device) else x


def check_divisible(img_size: Size2, patch_size: Size2) -> None:
    """Raise ``ValueError`` unless every side of ``img_size`` is a multiple of the matching patch side.

    Args:
        img_size: Image size, int or ``(H, W)``.
        patch_size: Patch size, int or ``(h, w)``.
    """
    sizes, patches = to_2tuple(img_size), to_2tuple(patch_size)
    if all(s % p == 0 for s, p in zip(sizes, patches)):
        return
    fixed = tuple(max(p, s // p * p) for s, p in zip(sizes, patches))
    multiple = patch_size if isinstance(patch_size, int) else tuple(patches)
    example = fixed[0] if isinstance(img_size, int) else fixed
    raise ValueError(f'image size {img_size} is not divisible by patch size {patch_size}: use a multiple of '
                     f'{multiple} (e.g. {example}) or another patch size')


def gather_kept(x: torch.Tensor, remove_mask: torch.Tensor,
                num_removed: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Drop the removed tokens, keeping the others in ascending position order.

    Args:
        x: Patch tokens ``(B, N, C)``.
        remove_mask: Bool ``(B, N)``, True = removed; every row must remove the same number of tokens.
        num_removed: That number, when the caller knows it (the masker's ``num_masked``); None: read from the mask
            (a host-device sync on a GPU), checking that the rows agree.

    Returns:
        Kept tokens ``(B, N_keep, C)`` and their positions ``ids_keep`` ``(B, N_keep)`` (long, ascending).
    """
    if remove_mask.shape != x.shape[:2]:
        raise ValueError(f'remove_mask must have shape {tuple(x.shape[:2])}, got {tuple(remove_mask.shape)}')
    if num_removed is None:
        counts = remove_mask.bool().sum(dim=1)
        if (counts != counts[0]).any():
            raise ValueError(f'every row of remove_mask must remove the same number of tokens, got {counts.tolist()}')
        num_removed = int(counts[0])
    ids_keep = sorted_positions(remove_mask.bool(), x.shape[1] - num_removed, value=False)
    return take_rows(x, ids_keep), ids_keep


def _removed_count(mask: Optional[torch.Tensor], count: Optional[int], mask_mode: str) -> Optional[int]:
    """The tokens a view's removal drops per row (the part of its batching key the mask decides): ``count`` when
    known, else read from the first row of the ``(B, N)`` mask; None without removal."""
    if mask is None or mask_mode != 'remove':
        return None
    return count if count is not None else int(mask[0].sum())


def conv_stem(in_chans: int, embed_dim: int, patch_size: Tuple[int, int]) -> nn.Sequential:
    """Stride-2 3x3 convolutions (GELU) down to the patch grid, then a 1x1 projection to ``embed_dim``: the early
    convolutions of Xiao et al. (arXiv 2106.14881), which make a small ViT learn shapes from little data far faster
    than a patchify stem. Maps (B, C, H, W) to (B, D, H / p, W / p) like the patch convolution it replaces.

    Args:
        in_chans: Input channels C.
        embed_dim: Output width D.
        patch_size: Square power-of-two patch size p (the total stride).
    """
    p = patch_size[0]
    if patch_size[0] != patch_size[1] or p < 2 or p & (p - 1):
        raise ValueError(f'the conv stem needs a square power-of-two patch size, got {tuple(patch_size)}')
    num_convs = p.bit_length() - 1
    layers, channels = [], in_chans
    for i in range(num_convs):
        width = max(embed_dim // 2 ** (num_convs - 1 - i), 16)
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.GELU()]
        channels = width
    return nn.Sequential(*layers, nn.Conv2d(channels, embed_dim, 1))


@MODELS.register_module()
class VisionTransformer(TimmVisionTransformer):
    """ViT image encoder (Dosovitskiy et al., arXiv 2010.11929) on timm's implementation.

    Adds ``forward_encoder``: token removal (MAE/FLIP/A-CLIP/DetailCLIP student), mask-token replacement
    (iBOT/BEiT student) and the CLS attention score used by attention-guided maskers (A-CLIP, DetailCLIP), and
    ``forward_views``: it on a list of views, same-shaped ones batched. Everything else (``forward``,
    ``forward_features``, ``forward_intermediates``, ``set_grad_checkpointing``, ``no_weight_decay``,
    ``group_matcher``, parameter names) is timm's.

    Args:
        img_size: Input size, int or ``(H, W)``; each side must be divisible by the patch size.
        patch_size: Patch size.
        embed_dim: Token width D.
        depth: Number of blocks.
        num_heads: Attention heads per block.
        mlp_ratio: MLP hidden width over D.
        qkv_bias: Bias on the qkv projection.
        drop_path_rate: Stochastic depth rate (linear over depth).
        freeze_patch_embed: True: keep the linear patch projection at its random init (A-CLIP, DetailCLIP;
            docs/methods.md 1.3): the patchify convolution of the patch stem, the final 1x1 projection of the conv
            stem (its 3x3 convolutions train, as the layers before a frozen projection would). ``'stem'``: freeze
            the whole patch embedding, conv layers included (the tiny recipes' earlier setting, kept for their
            diagnostics).
        stem: ``'patch'`` (a p x p stride-p convolution, ViT and every reference recipe) or ``'conv'``: stride-2 3x3
            convolutions down to the same grid (see :func:`conv_stem`); only timm checkpoints of the patch stem load.
        use_mask_token: Create the learned ``mask_token`` ``(1, 1, D)`` needed by ``replace_mask``.
        num_classes: Classifier classes; 0 makes ``forward`` return pooled features ``(B, D)``.
        attn_impl: ``'sdpa'`` (fused attention) or ``'manual'`` (materialised softmax(q k^T)); see
            :func:`set_attn_impl`.
        recompute_norm_act: Recompute the LayerNorm and MLP activation outputs of every block in backward instead of
            storing them (see :class:`CLSAttentionBlock`): same gradients, about 3/8 less activation memory. Each
            block's ``recompute_norm_act`` attribute switches it at run time.
        norm_eps: Epsilon of every LayerNorm (1e-6 as timm's ViT; OpenAI's CLIP ViT uses 1e-5).
        cls_token_init_std: None keeps timm's init of ``cls_token`` (normal, std 1e-6, timm >= 0.6); a float draws it
            from a normal with this std truncated to [-2, 2], as timm < 0.6 did with 0.02 (SLIP pins timm 0.5.0,
            DetailCLIP 0.5.4). Applied by :meth:`init_weights`, so every re-initialisation keeps it.
        **kwargs: Passed to timm's ``VisionTransformer``, e.g. ``pre_norm=True`` (a LayerNorm before the blocks) and
            ``act_layer='quick_gelu'`` for OpenAI's CLIP ViT.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: Size2 = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4., qkv_bias: bool = True, drop_path_rate: float = 0.,
                 freeze_patch_embed: Union[bool, str] = False, use_mask_token: bool = False, num_classes: int = 0,
                 stem: str = 'patch', attn_impl: str = 'sdpa', recompute_norm_act: bool = True,
                 norm_eps: float = 1e-6, cls_token_init_std: Optional[float] = None, **kwargs) -> None:
        check_divisible(img_size, patch_size)
        self.cls_token_init_std = cls_token_init_std  # before timm's constructor, which calls init_weights
        kwargs.setdefault('norm_layer', partial(nn.LayerNorm, eps=norm_eps))
        super().__init__(
            img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
            mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_path_rate=drop_path_rate, num_classes=num_classes,
            block_fn=CLSAttentionBlock, attn_layer=CLSAttention, **kwargs)
        self._check_token_layout()
        set_attn_impl(self, attn_impl)
        for blk in self.blocks:
            blk.recompute_norm_act = recompute_norm_act
        # forward_encoder also takes other sizes (multi-crop local views): pos_embed is resampled to their grid
        self.patch_embed.strict_img_size = False
        if stem not in ('patch', 'conv'):
            raise ValueError(f'unknown stem {stem!r}: use "patch" or "conv"')
        if stem == 'conv':
            self.patch_embed.proj = conv_stem(self.patch_embed.proj.in_channels, embed_dim, self.patch_embed.patch_size)
        if freeze_patch_embed not in (False, True, 'stem'):
            raise ValueError(f'freeze_patch_embed must be False, True or "stem", got {freeze_patch_embed!r}')
        if freeze_patch_embed:
            (self.patch_embed if freeze_patch_embed == 'stem' else self.patch_projection()).requires_grad_(False)
        # Zero init as in iBOT's masked_embed; created only on request so plain timm state dicts load strictly.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if use_mask_token else None

    def init_weights(self, mode: str = '', **kwargs) -> None:
        """timm's init (also what MMEngine's ``init_weights`` of the pretrainer runs; ``kwargs``: timm's other
        arguments, e.g. ``needs_reset``), then ``cls_token`` from trunc_normal(``cls_token_init_std``) when that is set.
        """
        super().init_weights(mode, **kwargs)
        if self.cls_token_init_std is not None:
            trunc_normal_(self.cls_token, std=self.cls_token_init_std)

    def patch_projection(self) -> nn.Conv2d:
        """The linear map from pixels (patch stem) or stem features (conv stem) to the token width D."""
        proj = self.patch_embed.proj
        return proj[-1] if isinstance(proj, nn.Sequential) else proj

    def _check_token_layout(self) -> None:
        """forward_encoder assumes timm's classic layout: one CLS token, pos_embed over CLS + patches."""
        if (self.cls_token is None or self.reg_token is not None or self.pos_embed is None or self.no_embed_class
                or self.dynamic_img_size):
            raise ValueError('VisionTransformer needs class_token=True, reg_tokens=0, a learned pos_embed with '
                             'no_embed_class=False and dynamic_img_size=False')

    @property
    def grid_size(self) -> Tuple[int, int]:
        """Patch grid ``(H/p, W/p)``."""
        return tuple(self.patch_embed.grid_size)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens N."""
        return self.patch_embed.num_patches

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameter names excluded from weight decay (timm's set plus ``mask_token``)."""
        return super().no_weight_decay() | {'mask_token'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer-decay groups with ``mask_token`` in the stem."""
        matcher = super().group_matcher(coarse)
        matcher['stem'] = matcher['stem'] + '|mask_token'
        return matcher

    def forward_encoder(self, x: torch.Tensor, remove_mask: Optional[torch.Tensor] = None,
                        replace_mask: Optional[torch.Tensor] = None,
                        return_cls_attn: bool = False,
                        num_removed: Optional[int] = None) -> Dict[str, Optional[torch.Tensor]]:
        """Encode images with optional token removal, mask-token replacement and CLS attention.

        Order: patch embedding -> replace masked patches by ``mask_token`` -> add patch pos_embed -> remove
        tokens -> prepend CLS (+ its pos_embed) -> blocks -> final norm. ``patch_drop`` is not applied here;
        removal is explicit.

        Args:
            x: Images ``(B, 3, H, W)``.
            remove_mask: Bool ``(B, N)``, True = removed; the same count per row.
            replace_mask: Bool ``(B, N)``, True = replaced by ``mask_token`` (needs ``use_mask_token=True``).
            return_cls_attn: Also return the CLS attention score.
            num_removed: The tokens ``remove_mask`` removes per row, if known (no host read then).

        Returns:
            dict with ``tokens`` ``(B, 1 + N_keep, D)`` after the final norm (CLS first), ``ids_keep``
            ``(B, N_keep)`` long (None without ``remove_mask``) and ``cls_attn`` ``(B, N_keep)`` (None unless
            asked): the post-softmax CLS->patch probability averaged over all layers and heads, the CLS->CLS
            column dropped after the softmax (rows do not sum to 1). With ``remove_mask`` its columns are the
            kept positions ``ids_keep``; the teacher normally runs unmasked, giving all N patches.
        """
        x = self._embed_patches(x, replace_mask)
        ids_keep = None
        if remove_mask is not None:
            x, ids_keep = gather_kept(x, remove_mask, num_removed)
        x = self.norm_pre(self.pos_drop(self._prepend_cls(x)))
        x, cls_attn = self._run_blocks(x, return_cls_attn)
        return dict(tokens=self.norm(x), ids_keep=ids_keep, cls_attn=cls_attn)

    def forward_views(self, views: Sequence[torch.Tensor], masks: Optional[Sequence[Optional[torch.Tensor]]] = None,
                      num_masked: Optional[Sequence[Optional[int]]] = None, *, mask_mode: str = 'remove',
                      return_cls_attn: bool = False) -> List[Dict[str, Optional[torch.Tensor]]]:
        """:meth:`forward_encoder` on every view, views of the same size whose masks remove the same number of tokens
        (or are all None) concatenated along the batch: two DetailCLIP views cost one (2B)-sample pass.

        Args:
            views: V views, each ``(B, 3, H, W)``.
            masks: Per view, a bool ``(B, N)`` mask (True = removed or replaced) or None; None: no masks.
            num_masked: Per view, the tokens every row of its mask masks, when known (the masker's ``num_masked``);
                the others are read from the masks (a host-device sync on a GPU).
            mask_mode: ``'remove'`` or ``'replace'``.
            return_cls_attn: Also return the CLS attention score.

        Returns:
            Per view, :meth:`forward_encoder`'s outputs (``tokens`` ``(B, 1 + N_keep, D)``, ``ids_keep``, ``cls_attn``).
        """
        if mask_mode not in ('remove', 'replace'):
            raise ValueError(f'unknown mask_mode {mask_mode!r}: use "remove" or "replace"')
        masks = list(masks) if masks is not None else [None] * len(views)
        counts = list(num_masked) if num_masked is not None else [None] * len(views)
        keys = [(tuple(view.shape[1:]), mask is None, _removed_count(mask, count, mask_mode))
                for view, mask, count in zip(views, masks, counts)]
        encode = partial(self._forward_masked, mask_mode=mask_mode, return_cls_attn=return_cls_attn)
        return run_batched(encode, list(zip(views, masks, counts)), keys)

    def _forward_masked(self, x: torch.Tensor, mask: Optional[torch.Tensor], count: Optional[int], mask_mode: str,
                        return_cls_attn: bool) -> Dict[str, Optional[torch.Tensor]]:
        """:meth:`forward_encoder` of ``(B, 3, H, W)`` images with the ``(B, N)`` ``mask`` (or None) removing or
        replacing tokens, as ``mask_mode`` says; ``count``: the removed tokens per row, when known."""
        if mask is None:
            return self.forward_encoder(x, return_cls_attn=return_cls_attn)
        if mask_mode == 'replace':
            return self.forward_encoder(x, replace_mask=mask, return_cls_attn=return_cls_attn)
        return self.forward_encoder(x, remove_mask=mask, num_removed=count, return_cls_attn=return_cls_attn)

    def _embed_patches(self, x: torch.Tensor, replace_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Patch tokens with positional embedding, masked ones replaced first.

        Args:
            x: Images ``(B, 3, H, W)``.
            replace_mask: Bool ``(B, N)`` or None, True = replaced by ``mask_token``.

        Returns:
            Tokens ``(B, N, D)``.
        """
        check_divisible(tuple(x.shape[-2:]), self.patch_embed.patch_size)
        grid = (x.shape[-2] // self.patch_embed.patch_size[0], x.shape[-1] // self.patch_embed.patch_size[1])
        x = self.patch_embed(x)
        if replace_mask is not None:
            if self.mask_token is None:
                raise ValueError('replace_mask needs a mask token: build the encoder with use_mask_token=True')
            if replace_mask.shape != x.shape[:2]:
                raise ValueError(f'replace_mask must have shape {tuple(x.shape[:2])}, got {tuple(replace_mask.shape)}')
            x = torch.where(replace_mask.bool().unsqueeze(-1), self.mask_token.to(x.dtype), x)
        return x + self._patch_pos_embed(grid)

    def _patch_pos_embed(self, grid: Tuple[int, int]) -> torch.Tensor:
        """Patch positional embedding ``(1, gh * gw, D)``, bicubically resampled when the grid is not the trained one
        (DINO/iBOT local crops)."""
        if tuple(grid) == self.grid_size:
            return self.pos_embed[:, 1:]
        return resample_abs_pos_embed(self.pos_embed[:, 1:], new_size=grid, old_size=self.grid_size,
                                      num_prefix_tokens=0)

    def _prepend_cls(self, x: torch.Tensor) -> torch.Tensor:
        """Prepend the CLS token with its positional embedding: ``(B, N_keep, D) -> (B, 1 + N_keep, D)``."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return torch.cat([cls.to(x.dtype), x], dim=1)

    def _run_blocks(self, x: torch.Tensor, return_cls_attn: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Run every block (checkpointed when enabled) and average the CLS attention.

        Args:
            x: Tokens ``(B, T, D)``, CLS first.
            return_cls_attn: Accumulate the CLS attention.

        Returns:
            Tokens ``(B, T, D)`` and the CLS->patch score ``(B, T - 1)`` or None.
        """
        total = None
        for blk in self.blocks:
            out = self._run_block(blk, x, return_cls_attn)
            if not return_cls_attn:
                x = out
                continue
            x, attn = out
            total = attn if total is None else total + attn
        if total is None:
            return x, None
        return x, total.mean(dim=1)[:, 1:] / len(self.blocks)

    def _run_block(self, blk: nn.Module, x: torch.Tensor, return_cls_attn: bool = False):
        """One block, through ``torch.utils.checkpoint`` when timm's grad checkpointing is on."""
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return torch.utils.checkpoint.checkpoint(blk, x, None, False, return_cls_attn, use_reentrant=False)
        return blk(x, return_cls_attn=return_cls_attn)
