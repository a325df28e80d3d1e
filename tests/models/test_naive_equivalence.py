"""The benchmark's naive way (the DetailCLIP reference's straightforward way, tools/analysis/naive.py) computes the
same step as the optimised paths: same masks, losses, gradients, iBOT centres, EMA teacher and optimizer update."""
import copy
import weakref

import pytest
import torch
from mmengine.config import Config
from timm.models.vision_transformer import Attention

import detailclip.models  # noqa: F401  (registers the model classes)
from detailclip.models.encoders.text import ResidualAttentionBlock
from detailclip.models.encoders.vit import CLSAttention, CLSAttentionBlock, VisionTransformer
from detailclip.models.objectives.ibot import IBOTObjective
from detailclip.registry import MODELS
from detailclip.testing import ROOT, shrink_model
from tools.analysis.benchmark import build_wrapper
from tools.analysis.naive import NAIVE_WAYS, apply_naive

CONFIG = f'{ROOT}/configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'
TOLERANCE = {torch.float64: dict(rtol=1e-7, atol=1e-9), torch.float32: dict(rtol=2e-4, atol=2e-6)}


@pytest.fixture(scope='module')
def cfg():
    cfg = Config.fromfile(CONFIG)
    cfg.model = shrink_model(cfg.model)
    cfg.model.image_encoder.depth = 3  # several blocks: the stacked CLS score averages over them
    return cfg


def _pair(cfg, dtype):
    """A tiny DetailCLIP with a teacher that differs from the student and non-zero iBOT centres, and its naive copy."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(0.02 * torch.randn_like(p))
        model.objectives.ibot.loss.cls_center.normal_()
        model.objectives.ibot.loss.patch_center.normal_()
    model.set_teacher_temp(cls=0.04, patch=0.07)
    model = model.to(dtype).train()
    return model, apply_naive(copy.deepcopy(model))


def _inputs(cfg, dtype, batch=3):
    gen = torch.Generator().manual_seed(1)
    size, context = cfg.model.image_encoder.img_size, cfg.model.text_encoder.context_length
    views = [torch.randn(batch, 3, size, size, generator=gen, dtype=dtype) for _ in range(2)]
    text = torch.randint(1, 1000, (batch, context), generator=gen)
    text[:, -1] = 49407
    return dict(views=views, text=text)


def _step(model, inputs):
    """Losses, masks and gradients (by parameter name) of one forward/backward."""
    masks = []
    handle = model.masker.register_forward_hook(lambda module, args, out: masks.extend(out))
    losses = model.loss(inputs)
    handle.remove()
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return losses, masks, grads


def test_naive_way_reaches_every_part(cfg):
    model, naive = _pair(cfg, torch.float32)
    attention = [m for m in naive.modules() if isinstance(m, Attention)]
    assert len(attention) > 2 * cfg.model.image_encoder.depth  # student, teacher and decoder blocks
    assert not any(m.fused_attn for m in attention) and all(m.fused_attn for m in model.modules()
                                                            if isinstance(m, Attention))
    for base, mixins in NAIVE_WAYS.items():  # every such part of the copy, the teacher's included, and none of ours
        ours, theirs = ([m for m in net.modules() if isinstance(m, base)] for net in (model, naive))
        assert len(theirs) == len(ours) > 0, base
        assert all(isinstance(m, mixin) for m in theirs for mixin in mixins), base
        assert not any(isinstance(m, mixins[0]) for m in ours), base
    assert sum(isinstance(m, VisionTransformer) for m in naive.modules()) == 2  # the student and the teacher's copy
    assert naive.objectives.ibot.patch_positions == 'all' and model.objectives.ibot.patch_positions == 'masked'
    assert naive.objectives.mae.decode_positions == 'all' and model.objectives.mae.decode_positions == 'masked'
    assert model.data_preprocessor.trim_text_padding and not naive.data_preprocessor.trim_text_padding
    assert naive.state_dict().keys() == model.state_dict().keys()
    blocks = [m for m in model.modules() if isinstance(m, (CLSAttentionBlock, ResidualAttentionBlock))]
    assert len(blocks) == 2 * (cfg.model.image_encoder.depth + cfg.model.text_encoder.layers) + 1  # + the decoder's
    assert all(m.recompute_norm_act for m in blocks)
    assert not any(m.recompute_norm_act for m in naive.modules()
                   if isinstance(m, (CLSAttentionBlock, ResidualAttentionBlock)))


@pytest.mark.parametrize('autocast', [False, True])
def test_recomputed_norm_act_outputs_are_freed_and_gradients_exact(autocast):
    """With recompute_norm_act the GELU output is not kept for backward (it is freed after the forward) and the
    gradients are bit-identical to storing it."""
    torch.manual_seed(0)
    encoder = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    x = torch.randn(2, 3, 32, 32)
    grads = {}
    for recompute in (False, True):
        for blk in encoder.blocks:
            blk.recompute_norm_act = recompute
        outputs = []
        handle = encoder.blocks[0].mlp.act.register_forward_hook(lambda m, i, out: outputs.append(weakref.ref(out)))
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = encoder.forward_encoder(x)['tokens'].float().square().sum()
        handle.remove()
        assert (outputs[0]() is None) == recompute
        encoder.zero_grad()
        loss.backward()
        grads[recompute] = [p.grad.clone() for p in encoder.parameters() if p.grad is not None]
    assert all(torch.equal(a, b) for a, b in zip(grads[False], grads[True]))


def _compiled_step(block: torch.nn.Module, x: torch.Tensor):
    """Output, input and weight gradients of the compiled ``block`` on ``x``, and the bytes it saves for backward."""
    saved = []

    def pack(tensor):
        saved.append(tensor.untyped_storage().nbytes())
        return tensor

    torch._dynamo.reset()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = torch.compile(block)(x)
    return (out, *torch.autograd.grad(out.square().sum(), [x, *block.parameters()])), sum(saved)


@pytest.mark.parametrize('block_type', ['image', 'text'])
def test_compiled_blocks_recompute_norm_act_with_the_same_gradients(block_type):
    """Under torch.compile ``recompute_norm_act`` is a selective-checkpoint policy (keep matmul and attention outputs):
    the same outputs and gradients as eager, and less kept for backward than the compiler keeps by default."""
    torch.manual_seed(0)
    block = (CLSAttentionBlock(32, 2, 2., qkv_bias=True, attn_layer=CLSAttention) if block_type == 'image'
             else ResidualAttentionBlock(32, 2, 2.))
    x = torch.randn(2, 9, 32, requires_grad=True)
    out = block(x)
    eager = (out, *torch.autograd.grad(out.square().sum(), [x, *block.parameters()]))
    compiled, kept = _compiled_step(block, x)
    block.recompute_norm_act = False
    _, kept_by_default = _compiled_step(block, x)
    for got, want in zip(compiled, eager):
        torch.testing.assert_close(got, want)
    assert kept < 0.8 * kept_by_default


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_naive_step_equals_optimised_step(cfg, dtype):
    model, naive = _pair(cfg, dtype)
    inputs = _inputs(cfg, dtype)
    losses, masks, grads = _step(model, inputs)
    naive_losses, naive_masks, naive_grads = _step(naive, inputs)

    for got, want in zip(masks, naive_masks):
        assert torch.equal(got, want)
    assert masks[0].any() and set(losses) == set(naive_losses)
    for key in losses:
        torch.testing.assert_close(losses[key], naive_losses[key], **TOLERANCE[dtype], msg=key)
    for name, grad in grads.items():
        assert grad is not None, name
        torch.testing.assert_close(grad, naive_grads[name], **TOLERANCE[dtype], msg=name)
    for name, buffer in model.objectives.ibot.loss.named_buffers():
        torch.testing.assert_close(buffer, getattr(naive.objectives.ibot.loss, name), **TOLERANCE[dtype])

    model.update_teacher(0.9)
    naive.update_teacher(0.9)
    for (name, got), want in zip(model.teacher.named_parameters(), naive.teacher.parameters()):
        torch.testing.assert_close(got, want, **TOLERANCE[dtype], msg=name)


def test_naive_optimizer_is_the_plain_loop_with_the_same_update(cfg):
    model, naive = _pair(cfg, torch.float32)
    wrapper = build_wrapper(cfg, model, naive=False, amp=False, device='cpu')
    naive_wrapper = build_wrapper(cfg, naive, naive=True, amp=False, device='cpu')
    assert wrapper.optimizer.defaults['fused'] and not naive_wrapper.optimizer.defaults['foreach']
    assert not naive_wrapper.optimizer.defaults['fused']
    _step(model, _inputs(cfg, torch.float32))
    for p, q in zip(model.parameters(), naive.parameters()):  # the same gradients (Adam's first step ~ sign(g))
        q.grad = None if p.grad is None else p.grad.clone()
    wrapper.step()
    naive_wrapper.step()
    for (name, got), want in zip(model.named_parameters(), naive.parameters()):
        torch.testing.assert_close(got, want, **TOLERANCE[torch.float32], msg=name)


def test_masked_patch_positions_refuse_a_batchnorm_head():
    with pytest.raises(ValueError, match='patch_positions="all"'):
        IBOTObjective(head=dict(in_dim=8, out_dim=16, hidden_dim=16, bottleneck_dim=4, norm='bn'))
    assert IBOTObjective(head=dict(in_dim=8, out_dim=16, hidden_dim=16, bottleneck_dim=4, norm='bn'),
                         patch_positions='all').patch_positions == 'all'
