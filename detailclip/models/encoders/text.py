"""CLIP text transformer (docs/methods.md 1.2), laid out like OpenAI CLIP / open_clip.

Parameter names equal OpenAI CLIP's text tower (``token_embedding``, ``positional_embedding``,
``transformer.resblocks.N.{ln_1,attn.in_proj_weight,attn.in_proj_bias,attn.out_proj,ln_2,mlp.c_fc,mlp.c_proj}``,
``ln_final``), so pretrained weights import by renaming a prefix only. The projection lives elsewhere.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from detailclip.registry import MODELS
from ..attention import attention
from .vit import autocast_input, recompute_in_backward, run_recomputing_norm_act


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input dtype (OpenAI CLIP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``(..., C)`` in fp32; returns the input dtype."""
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, OpenAI CLIP's GELU approximation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise on any shape."""
        return x * torch.sigmoid(1.702 * x)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with ``nn.MultiheadAttention``'s parameter names.

    Args:
        width: Token width W.
        heads: Number of heads; must divide W.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} is not divisible by heads {heads}')
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)  # nn.MultiheadAttention's defaults

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend each token to itself and earlier tokens.

        Args:
            x: Tokens ``(B, L, W)``.

        Returns:
            Tokens ``(B, L, W)``.
        """
        B, L, W = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.reshape(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, W))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: ``x += attn(ln_1(x)); x += mlp(ln_2(x))`` with a QuickGELU MLP.

    With ``recompute_norm_act`` (a plain attribute, on by default) the LayerNorm and QuickGELU outputs are recomputed
    in backward instead of stored (:func:`~detailclip.models.encoders.vit.recompute_in_backward`, under torch.compile
    :func:`~detailclip.models.encoders.vit.run_recomputing_norm_act`); same gradients.

    Args:
        width: Token width W.
        heads: Attention heads.
        mlp_ratio: MLP hidden width over W.
    """

    recompute_norm_act = True

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = LayerNormFp32(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln_2 = LayerNormFp32(width)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, hidden)), ('gelu', QuickGELU()), ('c_proj', nn.Linear(hidden, width))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, L, W)`` -> ``(B, L, W)``."""
        return run_recomputing_norm_act(self, self._forward, x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s body."""
        recompute = self.recompute_norm_act and torch.is_grad_enabled() and not torch.compiler.is_compiling()
        h = autocast_input(self.ln_1(x))
        with recompute_in_backward(h, lambda x=x: autocast_input(self.ln_1(x)), recompute):
            x = x + self.attn(h)
        h = autocast_input(self.ln_2(x))
        with recompute_in_backward(h, lambda: autocast_input(self.ln_2(x)), recompute):
            hidden = self.mlp.c_fc(h)
        act = self.mlp.gelu(hidden)
        with recompute_in_backward(act, lambda: self.mlp.gelu(hidden), recompute):
            return x + self.mlp.c_proj(act)


class Transformer(nn.Module):
    """Stack of ``ResidualAttentionBlock`` s under ``resblocks`` with optional gradient checkpointing.

    Args:
        width: Token width W.
        layers: Number of blocks.
        heads: Attention heads.
        mlp_ratio: MLP hidden width over W.
    """

    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float = 4.) -> None:
        super().__init__()
        self.width, self.layers = width, layers
        self.grad_checkpointing = False
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp_ratio) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, L, W)`` -> ``(B, L, W)``."""
        for block in self.resblocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


@MODELS.register_module()
class CLIPTextTransformer(nn.Module):
    """CLIP text encoder (Radford et al., arXiv 2103.00020), without the text projection.

    Tokens ``(B, L)`` -> token + positional embedding -> causal pre-LN blocks -> ``ln_final`` -> the feature at
    the EOT position (argmax of the token ids, EOT having the highest id) -> ``(B, width)``.

    Args:
        context_length: Sequence length L.
        vocab_size: Vocabulary size.
        width: Token width W.
        layers: Number of blocks.
        heads: Attention heads.
        mlp_ratio: MLP hidden width over W.
    """

    def __init__(self, context_length: int = 77, vocab_size: int = 49408, width: int = 512, layers: int = 12,
                 heads: int = 8, mlp_ratio: float = 4.) -> None:
        super().__init__()
        self.context_length, self.vocab_size, self.width = context_length, vocab_size, width
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads, mlp_ratio)
        self.ln_final = LayerNormFp32(width)
        self.init_weights()

    def init_weights(self) -> None:
        """OpenAI CLIP init (docs/methods.md 1.2); biases keep their PyTorch defaults."""
        width, layers = self.transformer.width, self.transformer.layers
        attn_std, proj_std, fc_std = width ** -0.5, width ** -0.5 * (2 * layers) ** -0.5, (2 * width) ** -0.5
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every block in training to save activation memory."""
        self.transformer.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        """Parameter names excluded from weight decay."""
        return {'positional_embedding'}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encode tokenised text.

        Args:
            tokens: Token ids ``(B, L)`` long, L <= ``context_length``, EOT = highest id in each row. Attention is
                causal, so dropping padding columns after every row's EOT leaves the features as they are
                (:class:`~detailclip.models.data_preprocessor.ImageTextDataPreprocessor` does).

        Returns:
            EOT features ``(B, W)`` after ``ln_final``, before any projection.
        """
        self._check_tokens(tokens)
        positions = self.positional_embedding[:tokens.shape[1]]
        x = self.token_embedding(tokens) + positions.to(self.token_embedding.weight.dtype)
        x = self.ln_final(self.transformer(x))
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]

    def _check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``tokens`` is a long ``(B, L)`` tensor, 1 <= L <= ``context_length``."""
        if tokens.dim() != 2 or not 0 < tokens.shape[1] <= self.context_length or tokens.dtype != torch.long:
            raise ValueError(f'tokens must be a (B, L <= {self.context_length}) torch.long tensor, got shape '
                             f'{tuple(tokens.shape)} and dtype {tokens.dtype}')
