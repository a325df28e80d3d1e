"""Scaled dot-product attention for training: the fused kernel, and on CPU in bf16/fp16 matmuls.

On a CPU, ``F.scaled_dot_product_attention`` runs a flash-attention kernel. In fp32 it is as fast as matmuls or
faster; in bf16 both its forward and its backward are slower than bf16 matmuls around an fp32 softmax (ViT-B
shapes; item h of docs/performance.md). So for reduced-precision CPU inputs without mask or dropout
:func:`attention` computes softmax(q k^T / sqrt(hd)) v with matmuls in the input dtype and an fp32 softmax, as
autocast's unfused path does, a few samples at a time so that the (T, T) probabilities stay small; with gradients it
keeps only q, k and v, like the flash kernel, and recomputes the probabilities in backward.
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
    if q.device.type == 'cpu' and q.dtype in REDUCED_PRECISION and attn_mask is None and dropout_p == 0.0:
        if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
            return _MatmulAttention.apply(q, k, v, is_causal)
        return matmul_attention(q, k, v, is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)


def matmul_attention(q: Tensor, k: Tensor, v: Tensor, is_causal: bool = False) -> Tensor:
    """softmax(q k^T / sqrt(hd)) v: matmuls in the dtype of q, the softmax computed in fp32 and rounded to the dtype
    of v, as autocast's cast for the second matmul would (:func:`attention_probs`), in chunks of samples holding at
    most 2^24 probabilities at a time. No autograd graph of its own.

    Args:
        q (Tensor): Queries (B, heads, T, hd).
        k (Tensor): Keys (B, heads, T, hd).
        v (Tensor): Values (B, heads, T, hd).
        is_causal (bool): Each query attends to itself and earlier keys only.

    Returns:
        Tensor: (B, heads, T, hd), contiguous, in the dtype of v.
    """
    out = v.new_empty(q.shape)
    step = max(1, 2 ** 24 // (q.shape[1] * q.shape[2] * k.shape[2]))
    with torch.no_grad():
        for start in range(0, q.shape[0], step):
            rows = slice(start, start + step)
            torch.matmul(attention_probs(q[rows], k[rows], is_causal, v.dtype), v[rows], out=out[rows])
    return out


def attention_probs(q: Tensor, k: Tensor, is_causal: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    """softmax(q k^T / sqrt(hd)) from a matmul in the dtype of q, whatever autocast says; the softmax computes in fp32
    (CPU kernels widen bf16/fp16 inputs) and writes ``dtype``.

    Args:
        q (Tensor): Queries (B, heads, Tq, hd); Tq may be 1 (the CLS row).
        k (Tensor): Keys (B, heads, T, hd).
        is_causal (bool): Mask keys after each query (Tq == T).
        dtype (torch.dtype): Of the result.

    Returns:
        Tensor: Probabilities (B, heads, Tq, T) in ``dtype``.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if is_causal:
        above = torch.ones(logits.shape[-2:], dtype=torch.bool, device=q.device).triu_(1)
        logits = logits.masked_fill(above, float('-inf'))
    return torch.softmax(logits, dim=-1, dtype=dtype)


class _MatmulAttention(torch.autograd.Function):
    """Forward: :func:`matmul_attention`, keeping q, k, v. Backward: P = softmax(q k^T / sqrt(hd)) recomputed, then
    dV = P^T dO, dS = P * (dO V^T - rowsum(P * dO V^T)), dQ = dS K / sqrt(hd), dK = dS^T Q / sqrt(hd); matmuls in the
    input dtype, P and dS in fp32."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, is_causal: bool) -> Tensor:
        ctx.save_for_backward(q, k, v)
        ctx.is_causal = is_causal
        return matmul_attention(q, k, v, is_causal)

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
