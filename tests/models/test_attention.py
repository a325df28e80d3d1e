"""attention(): matmuls on CPU in bf16 (forward and backward), the fused kernel otherwise, against float64."""
import pytest
import torch
import torch.nn.functional as F

from detailclip.models.attention import attention


def _inputs(dtype, shape=(2, 3, 17, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_() for _ in range(3)]


def _grads(fn, inputs, grad_out):
    out = fn(*inputs)
    out.backward(grad_out.to(out.dtype))
    return out, [t.grad.double() for t in inputs]


@pytest.mark.parametrize('is_causal', [False, True])
def test_bf16_backward_matches_float64(is_causal):
    q, k, v = _inputs(torch.bfloat16)
    grad_out = torch.randn(q.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out, grads = _grads(lambda *x: attention(*x, is_causal=is_causal), (q, k, v), grad_out)
    assert type(out.grad_fn).__name__ == '_MatmulAttentionBackward'  # not the flash kernel's
    ref_inputs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref_out, ref_grads = _grads(lambda *x: F.scaled_dot_product_attention(*x, is_causal=is_causal), ref_inputs,
                                grad_out)
    torch.testing.assert_close(out.double(), ref_out, rtol=2e-2, atol=2e-2)
    for got, want in zip(grads, ref_grads):
        assert (got - want).norm() / want.norm() < 2e-2  # bf16 rounding of q k^T, dO V^T and dS


def test_bf16_backward_under_autocast_matches_the_flash_backward():
    """Same gradients as the fused kernel's own backward, within bf16 rounding, inside autocast."""
    q, k, v = _inputs(torch.float32)
    grad_out = torch.randn(q.shape, generator=torch.Generator().manual_seed(2))
    grads = []
    for fn in (attention, F.scaled_dot_product_attention):
        inputs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = fn(*[t.to(torch.bfloat16) for t in inputs])
        out.float().backward(grad_out)
        grads.append([t.grad for t in inputs])
    for got, want in zip(*grads):
        assert (got - want).norm() / want.norm() < 2e-2


@pytest.mark.parametrize('case', ['fp32', 'mask', 'dropout'])
def test_other_cases_use_the_fused_kernel(case):
    q, k, v = _inputs(torch.float32 if case == 'fp32' else torch.bfloat16)
    kwargs = dict(attn_mask=torch.zeros(17, 17, dtype=q.dtype)) if case == 'mask' else {}
    kwargs.update(dropout_p=0.5) if case == 'dropout' else None
    out = attention(q, k, v, **kwargs)
    assert type(out.grad_fn).__name__ != '_MatmulAttentionBackward'
    if case in ('fp32', 'mask'):
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, **kwargs))


@pytest.mark.parametrize('is_causal', [False, True])
def test_bf16_without_grad_uses_matmuls_in_chunks(is_causal):
    """40 samples of 12 x 197^2 probabilities exceed one chunk of 2^24 (36 samples), so every sample of both chunks
    must come out as float64 attention, within bf16 rounding."""
    q, k, v = (t.detach() for t in _inputs(torch.bfloat16, shape=(40, 12, 197, 8)))
    with torch.no_grad():
        out = attention(q, k, v, is_causal=is_causal)
    assert out.grad_fn is None
    want = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=is_causal)
    torch.testing.assert_close(out.double(), want, rtol=2e-2, atol=2e-2)
