"""DINO / iBOT heads: MLP, L2-normalised bottleneck, weight-normalised prototype layer (docs/methods.md 7.2, 8.2).

State-dict layout matches the iBOT reference (``models/head.py``) and DetailCLIP's ``ibot_head``: ``mlp.{i}.*`` with
the reference's Sequential indices (``mlp.0/2/4`` without a norm), ``last_layer.weight_g`` (K, 1) and
``last_layer.weight_v`` (K, bottleneck), and ``last_layer2.*`` for a separate patch layer. A reference head with a
*shared* patch layer lists the same tensors again as ``last_layer2.*``; here a shared head has no ``last_layer2``,
so a checkpoint importer drops those duplicate keys.
"""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.registry import MODELS
from ..layers import AllReduceBatchNorm1d

_ACTIVATIONS = dict(gelu=nn.GELU, relu=nn.ReLU)
_NORMS = dict(bn=AllReduceBatchNorm1d, ln=nn.LayerNorm)


class WeightNormLinear(nn.Module):
    """Bias-free linear layer with weight-normalised rows w_k = g_k v_k / |v_k| (Salimans & Kingma, arXiv 1602.07868).

    Parameter names and shapes are those of ``torch.nn.utils.weight_norm(nn.Linear(C, K, bias=False))``:
    ``weight_g`` (K, 1) and ``weight_v`` (K, C). Written out instead of using that hook, which is deprecated and whose
    modules cannot be deep-copied after a forward (the EMA teacher deep-copies the head).

    Args:
        in_dim (int): Input width C.
        out_dim (int): Output width K.
        fix_norm (bool): Keep g at 1 (frozen), so every row of the weight is a unit vector (DINO ``norm_last_layer``).
    """

    def __init__(self, in_dim: int, out_dim: int, fix_norm: bool = True):
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim))
        # nn.Linear's default init, which the references keep for this layer (their trunc-normal pass runs before
        # it is built); only the direction of each row matters.
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not fix_norm)

    def forward(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., K)."""
        return F.linear(x, self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True)))


@MODELS.register_module()
class IBOTHead(nn.Module):
    """Projection head of iBOT (Zhou et al., arXiv 2111.07832) and DINO (Caron et al., arXiv 2104.14294).

    ``num_layers`` linear layers in -> hidden -> ... -> bottleneck (norm and activation between them), L2
    normalisation, then a :class:`WeightNormLinear` to K prototype logits. Applied token-wise: the CLS and patch
    tokens go through the same MLP; patch tokens use ``last_layer2`` (K2 outputs) unless the patch layer is shared.
    MLP linears get trunc-normal(0.02) weights and zero biases. DetailCLIP (arXiv 2409.06809): in_dim 768, K = K2 =
    8192, no norm, shared, ``norm_last_layer`` True.

    Args:
        in_dim (int): Token width D.
        out_dim (int): Number of CLS prototypes K.
        hidden_dim (int): Hidden width of the MLP.
        bottleneck_dim (int): Width of the normalised bottleneck.
        num_layers (int): Linear layers in the MLP (>= 1).
        norm (str, optional): ``'bn'`` (all-rank BatchNorm over all tokens), ``'ln'`` or None after each hidden linear.
        act (str): ``'gelu'`` or ``'relu'``.
        norm_last_layer (bool): Freeze the weight-norm gains at 1.
        shared_patch_head (bool): Patch tokens use ``last_layer`` too.
        patch_out_dim (int, optional): K2 of a separate patch layer (defaults to ``out_dim``); must equal ``out_dim``
            when shared.
    """

    def __init__(self, in_dim: int, out_dim: int = 8192, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 num_layers: int = 3, norm: Optional[str] = None, act: str = 'gelu', norm_last_layer: bool = True,
                 shared_patch_head: bool = True, patch_out_dim: Optional[int] = None):
        super().__init__()
        patch_out_dim = out_dim if patch_out_dim is None else patch_out_dim
        if num_layers < 1 or norm not in (None, *_NORMS) or act not in _ACTIVATIONS:
            raise ValueError(f'IBOTHead: need num_layers >= 1, norm in (None, {", ".join(map(repr, _NORMS))}) and '
                             f'act in {tuple(_ACTIVATIONS)}; got {num_layers}, {norm!r}, {act!r}')
        if shared_patch_head and patch_out_dim != out_dim:
            raise ValueError(f'IBOTHead: a shared patch head has patch_out_dim == out_dim, got {patch_out_dim} and '
                             f'{out_dim} (set shared_patch_head=False for a separate patch layer)')
        self.in_dim, self.out_dim, self.patch_out_dim = in_dim, out_dim, patch_out_dim
        self.mlp = self._mlp(in_dim, hidden_dim, bottleneck_dim, num_layers, norm, act)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim, fix_norm=norm_last_layer)
        if not shared_patch_head:
            self.last_layer2 = WeightNormLinear(bottleneck_dim, patch_out_dim, fix_norm=norm_last_layer)

    @staticmethod
    def _mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, norm: Optional[str],
             act: str) -> nn.Sequential:
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            linear = nn.Linear(d_in, d_out)
            nn.init.trunc_normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if i < num_layers - 1:
                layers += [_NORMS[norm](d_out)] if norm else []
                layers.append(_ACTIVATIONS[act]())
        return nn.Sequential(*layers)

    @property
    def patch_layer(self) -> WeightNormLinear:
        """The prototype layer of patch tokens (``last_layer`` when shared)."""
        return getattr(self, 'last_layer2', self.last_layer)

    def forward(self, x: Tensor, patch: bool = False) -> Tensor:
        """Prototype logits of every token: ``prototypes(embed(x), patch)``.

        Args:
            x (Tensor): (..., D) tokens, e.g. (B, D) CLS tokens or (B, T, D) token sequences.
            patch (bool): Use the patch prototype layer (K2 outputs) instead of the CLS one (K outputs).

        Returns:
            Tensor: (..., K) or, with ``patch``, (..., K2) logits.
        """
        return self.prototypes(self.embed(x), patch)

    def forward_views(self, xs: Sequence[Tensor], *, patch: bool = False) -> Tensor:
        """The logits of V views' tokens ``xs`` (each (B, ..., D), the same shape) in one call on their stack:
        (V, B, ..., K), or (V, B, ..., K2) with ``patch``."""
        return self(torch.stack(list(xs)), patch)

    def embed(self, x: Tensor) -> Tensor:
        """(..., D) tokens -> (..., bottleneck) L2-normalised MLP outputs."""
        # Tokens are flattened so BatchNorm normalises over all of them, whatever the leading dims.
        z = F.normalize(self.mlp(x.reshape(-1, x.shape[-1])), dim=-1)
        return z.view(*x.shape[:-1], z.shape[-1])

    def prototypes(self, z: Tensor, patch: bool = False) -> Tensor:
        """(..., bottleneck) embeddings -> (..., K) logits, or (..., K2) with ``patch``; linear without bias, so the
        logits of a mean embedding are the mean of the logits."""
        return (self.patch_layer if patch else self.last_layer)(z)


@MODELS.register_module()
class DINOHead(IBOTHead):
    """DINO head (Caron et al., arXiv 2104.14294): :class:`IBOTHead` applied to CLS tokens only (K = 65536 in DINO)."""
