"""The platform's ViT as a multi-level backbone for mmsegmentation and mmdetection (docs/methods.md 9.4).

iBOT's downstream wrapper (Zhou et al., arXiv 2111.07832, evaluation/**/register_backbone.py) on our encoder: the
patch tokens of the blocks in ``out_indices`` as feature maps, optionally through the final LayerNorm
(``out_with_norm``, Q-I3) and an FPN adapter that turns the single stride-p grid into strides 4/8/16/32.
"""
import math
from collections import Counter
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS as MMSEG_MODELS
from torch import nn

from detailclip.converters.export import build_encoder, grid_of, load_backbone, load_strict, resize_pos_embed

Size2 = Sequence[int]


def fpn_level(patch_size: int, stride: int, dim: int, norm_cfg: dict) -> nn.Module:
    """Map a stride-``patch_size`` feature map ``(B, D, H/p, W/p)`` to stride ``stride`` ``(B, D, H/s, W/s)``.

    Finer strides stack 2x2 transposed convolutions with norm + GELU between them (iBOT's fpn1/fpn2 at p = 16),
    the patch stride is the identity (fpn3) and coarser strides stack 2x2 max-pools (fpn4).
    """
    ratio = max(patch_size, stride) // min(patch_size, stride)
    if max(patch_size, stride) % min(patch_size, stride) or ratio & (ratio - 1):
        raise ValueError(f'the FPN adapter cannot reach stride {stride} from patch size {patch_size}: they must '
                         f'differ by a power of two (use a power-of-two patch size or other fpn_strides)')
    steps = int(math.log2(ratio))
    if stride == patch_size:
        return nn.Identity()
    if stride > patch_size:
        return nn.Sequential(*[nn.MaxPool2d(2, 2) for _ in range(steps)])
    layers = [nn.ConvTranspose2d(dim, dim, 2, 2)]
    for _ in range(steps - 1):
        layers += [build_norm_layer(norm_cfg, dim)[1], nn.GELU(), nn.ConvTranspose2d(dim, dim, 2, 2)]
    return nn.Sequential(*layers)


class ViTBackbone(BaseModule):
    """Multi-level ViT backbone built on :class:`detailclip.models.encoders.vit.VisionTransformer`.

    Args:
        img_size: Training input size, int or ``(H, W)``; ``pos_embed`` is resized to it when loading and
            resampled at run time for other sizes (non-square included).
        patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, stem: Encoder architecture (must match the
            export's ``meta["encoder"]``).
        drop_path_rate: Stochastic depth of the fine-tuned encoder.
        out_indices: Blocks whose output tokens are returned.
        out_with_norm: Apply the encoder's final LayerNorm to every tapped block (iBOT's ADE20K setting, Q-I3); the
            last level then equals the pretrainer's encoder output.
        fpn_adapter: Resample the levels to ``fpn_strides`` (needs one level per stride).
        fpn_strides: Output strides relative to the input with ``fpn_adapter``.
        norm_cfg: Norm between the adapter's transposed convolutions (``SyncBN`` on GPUs, ``BN`` on CPU).
        frozen_stages: -1 trains everything; k >= 0 freezes the embeddings and blocks 0..k-1, and k >= depth also
            the final norm (a linear probe).
        with_cp: Gradient checkpointing of the blocks.
        pretrained: An exported backbone (``.pth`` or ``.safetensors``), loaded strictly in :meth:`init_weights`.
        init_cfg: MMEngine init config of the adapter.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: int = 16, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4., qkv_bias: bool = True, stem: str = 'patch',
                 drop_path_rate: float = 0., out_indices: Sequence[int] = (3, 5, 7, 11), out_with_norm: bool = True,
                 fpn_adapter: bool = False, fpn_strides: Sequence[int] = (4, 8, 16, 32),
                 norm_cfg: dict = dict(type='SyncBN', requires_grad=True), frozen_stages: int = -1,
                 with_cp: bool = False, pretrained: Optional[str] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.encoder = build_encoder(dict(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
                                          num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, stem=stem,
                                          drop_path_rate=drop_path_rate))
        self.encoder.set_grad_checkpointing(with_cp)
        if list(out_indices) != sorted(set(out_indices)) or not all(0 <= i < depth for i in out_indices):
            raise ValueError(f'out_indices must be ascending block indices in 0..{depth - 1}, got {list(out_indices)}')
        self.out_indices, self.out_with_norm = tuple(out_indices), out_with_norm
        self.fpn = self._build_fpn(fpn_strides, norm_cfg) if fpn_adapter else None
        self.frozen_stages, self.pretrained = frozen_stages, pretrained
        self._freeze()

    def _build_fpn(self, strides: Sequence[int], norm_cfg: dict) -> nn.ModuleList:
        """One :func:`fpn_level` per tapped block."""
        if len(strides) != len(self.out_indices):
            raise ValueError(f'fpn_adapter maps each of the {len(self.out_indices)} out_indices to one stride; got '
                             f'fpn_strides {list(strides)}')
        p = self.patch_size[0]
        if self.patch_size[0] != self.patch_size[1]:
            raise ValueError(f'fpn_adapter needs a square patch size, got {self.patch_size}')
        return nn.ModuleList([fpn_level(p, s, self.encoder.embed_dim, norm_cfg) for s in strides])

    @property
    def patch_size(self) -> Tuple[int, int]:
        """The encoder's patch size ``(p, p)``."""
        return tuple(self.encoder.patch_embed.patch_size)

    def _frozen_modules(self) -> list:
        """Encoder modules frozen by ``frozen_stages`` (the tokens cls_token/pos_embed are parameters, not modules)."""
        if self.frozen_stages < 0:
            return []
        enc = self.encoder
        frozen = [enc.patch_embed, *enc.blocks[:self.frozen_stages]]
        return frozen + [enc.norm] if self.frozen_stages >= len(enc.blocks) else frozen

    def _freeze(self) -> None:
        """Stop gradients of the frozen stages (their modules stay in eval mode, see :meth:`train`) and of the final
        norm when no level uses it (DDP needs every trainable parameter to get a gradient; the norm stays for strict
        loads)."""
        if not self.out_with_norm:
            self.encoder.norm.requires_grad_(False)
        if self.frozen_stages < 0:
            return
        self.encoder.cls_token.requires_grad_(False)
        self.encoder.pos_embed.requires_grad_(False)
        for module in self._frozen_modules():
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'ViTBackbone':
        """Train mode, frozen stages excepted (no dropout or drop-path there)."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def init_weights(self) -> None:
        """Initialise (timm's ViT init, the adapter's defaults), then load ``pretrained`` strictly."""
        super().init_weights()
        if self.pretrained:
            self.load_pretrained(self.pretrained)

    def load_pretrained(self, path: str) -> None:
        """Load an exported backbone into the encoder: ``pos_embed`` resized to this input size, every key checked.

        Raises:
            ValueError: On a missing, unexpected or misshapen entry (naming them).
        """
        state_dict, meta = load_backbone(path)
        encoder_meta = meta.get('encoder', {})
        old_grid = grid_of(encoder_meta['img_size'], encoder_meta['patch_size']) if encoder_meta else None
        state_dict = resize_pos_embed(state_dict, self.encoder.grid_size, old_grid)
        load_strict(self.encoder, state_dict, f'pretrained backbone {path}')
        origin = ', '.join(f'{k} {meta[k]}' for k in ('method', 'network', 'iter', 'epoch') if k in meta)
        groups = Counter(k.split('.')[0] for k in state_dict)
        print_log(f'ViTBackbone: loaded {len(state_dict)} tensors ({", ".join(f"{g} x{n}" for g, n in groups.items())})'
                  f' from {path} ({origin or "no meta"}); pos_embed {old_grid or "square"} -> {self.encoder.grid_size};'
                  ' every encoder key matched', logger='current')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-level features.

        Args:
            x: Images ``(B, 3, H, W)``, each side a multiple of the patch size.

        Returns:
            One ``(B, D, H / s, W / s)`` map per out index: s = patch size, or ``fpn_strides`` with the adapter.
        """
        enc = self.encoder
        grid = grid_of(x.shape[-2:], self.patch_size)
        tokens = enc.norm_pre(enc.pos_drop(enc._prepend_cls(enc._embed_patches(x, None))))
        levels = []
        for i, block in enumerate(enc.blocks):
            tokens = enc._run_block(block, tokens, False)
            if i in self.out_indices:
                levels.append(self._to_map(enc.norm(tokens) if self.out_with_norm else tokens, grid))
        if self.fpn is not None:
            levels = [adapter(level) for adapter, level in zip(self.fpn, levels)]
        return tuple(levels)

    @staticmethod
    def _to_map(tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Patch tokens of ``(B, 1 + N, D)`` as a contiguous map ``(B, D, gh, gw)`` (the CLS token dropped).

        The transposed view has channels-last strides, which convolutions pass on to their outputs; mmcv's CPU
        ``RoIAlign`` reads its input's memory as contiguous NCHW, so the RoI heads of mmdet would pool scrambled
        features from such maps (the RPN, all convolutions, would not notice).
        """
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, *grid).contiguous()


for _registry in (MMSEG_MODELS, MMDET_MODELS):
    _registry.register_module(module=ViTBackbone)
