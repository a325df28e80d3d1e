"""Scaled dot-product attention for training: the fused kernel forward, and on CPU in bf16/fp16 a matmul backward.

On a CPU, ``F.scaled_dot_product_attention`` runs a flash-attention kernel whose backward in bf16 takes 3-5x as long
as its forward and as the matmul path's backward (ViT-B shapes, docs/performance.md), while its fp32 backward is on
par. :func:`attention` keeps the fused forward and, for reduced-precision CPU inputs that need gradients, recomputes
softmax(q k^T / sqrt(hd)) in backward from the saved q, k, v with bf16 matmuls (AMX) and fp32 softmax, as autocast's
unfused path computes it, instead of calling the flash backward. Like the flash kernel it keeps no (T, T) tensor
between forward and backward.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCED_PRECISION = (torch.bfloat16, torch.float16)


def attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
              is_causal: bool = False) -> Tensor:
    """softmax(q k^T / sqrt(hd) + mask) v per head; ``F.scaled_dot_product_attention``'s arguments and result.

    Args:
        q (Tensor): Queries (B, heads, T, hd).
        k (Tensor): Keys (B, heads, T, hd).
        v (Tensor): Values (B, heads, T, hd).
        attn_mask (Tensor, optional): Mask broadcastable to (B, heads, T, T) (the fused kernel throughout when given).
        dropout_p (float): Attention dropout (the fused kernel throughout when > 0).
        is_causal (bool): Each query attends to itself and earlier keys only.

    Returns:
        Tensor: (B, heads, T, hd) in the dtype of q.
    """
    if (q.device.type == 'cpu' and q.dtype in REDUCED_PRECISION and attn_mask is None and dropout_p == 0.0
            and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))):
        return _MatmulBackwardAttention.apply(q, k, v, is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)


def attention_probs(q: Tensor, k: Tensor, is_causal: bool = False) -> Tensor:
    """softmax(q k^T / sqrt(hd)) in fp32 from a matmul in the dtype of q, whatever autocast says.

    Args:
        q (Tensor): Queries (B, heads, Tq, hd); Tq may be 1 (the CLS row).
        k (Tensor): Keys (B, heads, T, hd).
        is_causal (bool): Mask keys after each query (Tq == T).

    Returns:
        Tensor: Probabilities (B, heads, Tq, T) in fp32.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if is_causal:
        above = torch.ones(logits.shape[-2:], dtype=torch.bool, device=q.device).triu_(1)
        logits = logits.masked_fill(above, float('-inf'))
    return torch.softmax(logits, dim=-1, dtype=torch.float32)


class _MatmulBackwardAttention(torch.autograd.Function):
    """Forward: the fused kernel. Backward: P = softmax(q k^T / sqrt(hd)) recomputed, then dV = P^T dO,
    dS = P * (dO V^T - rowsum(P * dO V^T)), dQ = dS K / sqrt(hd), dK = dS^T Q / sqrt(hd); matmuls in the input dtype,
    P and dS in fp32."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> Tensor:
        ctx.save_for_backward(q, k, v)
        ctx.is_causal = is_causal
        return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        q, k, v = ctx.saved_tensors
        probs = attention_probs(q, k, ctx.is_causal)  # (B, h, T, T) fp32
        grad_out = grad_out.to(v.dtype)
        grad_v = probs.to(v.dtype).transpose(-2, -1) @ grad_out
        grad_probs = grad_out @ v.transpose(-2, -1)
        grad_logits = torch._softmax_backward_data(grad_probs.float(), probs, -1, torch.float32).to(q.dtype)
        scale = q.shape[-1] ** -0.5
        return (grad_logits @ k).mul_(scale), (grad_logits.transpose(-2, -1) @ q).mul_(scale), grad_v, None
