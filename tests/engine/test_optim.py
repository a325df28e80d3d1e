"""Optimisation conventions (docs/methods.md 1.6): parameter groups, AdamW through the registry, warm-up + cosine LR,
bf16 autocast wrapper on CPU."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

from detailclip.engine.optim import (AutocastOptimWrapper, CLIPOptimWrapperConstructor, WarmupCosineLR, is_no_decay,
                                     param_groups, warmup_cosine)
from detailclip.registry import MODELS, OPTIM_WRAPPERS, PARAM_SCHEDULERS

CONFIG = 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py'
EMBEDDINGS = ('pos_embed', 'cls_token', 'token_embedding', 'positional_embedding')


def reference_no_decay(name: str, param: torch.Tensor) -> bool:
    """SLIP/DetailCLIP main.py: no weight decay if ndim < 2 or the name contains bias, ln or bn."""
    return param.ndim < 2 or 'bias' in name or 'ln' in name or 'bn' in name


class Toy(nn.Module):
    """Parameter names that exercise every branch of the rule."""

    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.token_embedding = nn.Embedding(10, 4)
        self.positional_embedding = nn.Parameter(torch.zeros(5, 4))
        self.fc = nn.Linear(4, 4)
        self.ln_1 = nn.LayerNorm(4)
        self.bn = nn.BatchNorm1d(4)
        self.ln_proj = nn.Parameter(torch.zeros(4, 4))  # 2-D, but the name contains 'ln'
        self.scale = nn.Parameter(torch.zeros(()))  # 0-D
        self.conv = nn.Conv2d(3, 4, 2, bias=False)  # 4-D weight
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


@pytest.fixture(scope='module')
def tiny_model(cfg):
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def group_names(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    return [{names[id(p)] for p in g['params']} for g in groups]


def test_reference_rule_on_toy_model():
    model = Toy()
    decay, no_decay = group_names(model, param_groups(model, 0.5, 'reference'))
    assert decay == {'pos_embed', 'cls_token', 'token_embedding.weight', 'positional_embedding', 'fc.weight',
                     'conv.weight'}
    assert no_decay == {'fc.bias', 'ln_1.weight', 'ln_1.bias', 'bn.weight', 'bn.bias', 'ln_proj', 'scale'}
    for name, p in model.named_parameters():
        assert is_no_decay(name, p, 'reference') == reference_no_decay(name, p)


def test_clean_rule_exempts_embeddings():
    model = Toy()
    decay, no_decay = group_names(model, param_groups(model, 0.5, 'clean'))
    assert decay == {'fc.weight', 'conv.weight'}
    assert {'pos_embed', 'cls_token', 'token_embedding.weight', 'positional_embedding'} <= no_decay
    # the default rule is the clean one
    assert group_names(model, param_groups(model, 0.5)) == [decay, no_decay]


def test_groups_weight_decay_and_frozen_params_excluded():
    model = Toy()
    groups = param_groups(model, 0.3, 'reference')
    assert [g['weight_decay'] for g in groups] == [0.3, 0.]
    in_groups = {id(p) for g in groups for p in g['params']}
    assert id(model.frozen.weight) not in in_groups and id(model.frozen.bias) not in in_groups
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(in_groups) == sum(len(g['params']) for g in groups) == len(trainable)


@pytest.mark.parametrize('wd_rule', ['reference', 'clean'])
def test_rules_on_tiny_clip(tiny_model, wd_rule):
    decay, no_decay = group_names(tiny_model, param_groups(tiny_model, 0.1, wd_rule))
    assert decay.isdisjoint(no_decay)
    assert decay | no_decay == {n for n, _ in tiny_model.named_parameters()}
    for name, p in tiny_model.named_parameters():
        if reference_no_decay(name, p):
            assert name in no_decay
        embedding = any(k in name for k in EMBEDDINGS)
        if embedding:
            assert (name in decay) == (wd_rule == 'reference'), name
        elif not reference_no_decay(name, p):
            assert name in decay, name
    assert 'logit_scale' in no_decay


def test_unknown_wd_rule_raises():
    model = Toy()
    with pytest.raises(ValueError, match='wd_rule'):
        is_no_decay('fc.weight', model.fc.weight, 'paper')
    with pytest.raises(ValueError, match='paper'):
        param_groups(model, 0.1, 'paper')
    constructor = CLIPOptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.1)),
                                              paramwise_cfg=dict(wd_rule='paper'))
    with pytest.raises(ValueError, match='paper'):
        constructor(model)


def test_constructor_builds_adamw_from_tiny_config(cfg, tiny_model):
    init_default_scope('detailclip')
    wrapper = build_optim_wrapper(tiny_model, cfg.optim_wrapper)
    assert type(wrapper) is OptimWrapper
    opt = wrapper.optimizer
    assert isinstance(opt, torch.optim.AdamW)
    assert len(opt.param_groups) == 2
    for group in opt.param_groups:
        assert group['betas'] == (0.9, 0.98) and group['eps'] == 1e-8
        assert group['lr'] == cfg.optim_wrapper.optimizer.lr == 4e-4
    assert [g['weight_decay'] for g in opt.param_groups] == [0.1, 0.]
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    for group in opt.param_groups:
        for p in group['params']:
            assert reference_no_decay(names[id(p)], p) == (group['weight_decay'] == 0.)  # config: wd_rule='reference'
    assert sum(len(g['params']) for g in opt.param_groups) == len(list(tiny_model.parameters()))


# ----------------------------------------------------------------------------------------------------- LR schedule
def reference_schedule(peak, start, final, warmup_iters, total):
    """SLIP/DINO utils.cosine_scheduler, per iteration."""
    warm = np.linspace(start, peak, warmup_iters)
    iters = np.arange(total - warmup_iters)
    cos = final + 0.5 * (peak - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warm, cos))


@pytest.mark.parametrize('total,warmup', [(30, 10), (100, 7), (12, 2), (50, 0)])
def test_warmup_cosine_closed_form(total, warmup):
    peak, start, final = 5e-4, 1e-6, 1e-5
    values = np.array([warmup_cosine(i, total, warmup, peak, start, final) for i in range(total)])
    np.testing.assert_allclose(values, reference_schedule(peak, start, final, warmup, total), rtol=1e-12, atol=0)
    if warmup:
        assert values[0] == pytest.approx(start, abs=1e-15)
        assert values[warmup - 1] == pytest.approx(peak, rel=1e-12)
        assert np.all(np.diff(values[:warmup]) > 0)
    else:
        assert values[0] == pytest.approx(peak, rel=1e-12)
    assert values[warmup] == pytest.approx(peak, rel=1e-12)
    assert np.all(np.diff(values[warmup:]) < 0)
    n = total - warmup
    last = final + 0.5 * (peak - final) * (1 + math.cos(math.pi * (n - 1) / n))
    assert values[-1] == pytest.approx(last, rel=1e-12)
    assert final < values[-1] < final + (peak - final) * 0.03


def toy_wrapper(lrs=(1e-3, )):
    params = [nn.Parameter(torch.zeros(2)) for _ in lrs]
    opt = torch.optim.AdamW([dict(params=[p], lr=lr) for p, lr in zip(params, lrs)], betas=(0.9, 0.98))
    return OptimWrapper(optimizer=opt)


def scheduled_lrs(wrapper, sched, steps: int) -> np.ndarray:
    """(steps, groups) learning rates as the train loop sees them: it reads the lr, steps the optimizer, then the
    scheduler."""
    seen = []
    for _ in range(steps):
        seen.append([g['lr'] for g in wrapper.optimizer.param_groups])
        wrapper.step()
        sched.step()
    return np.array(seen)


def test_scheduler_runner_path_matches_closed_form():
    init_default_scope('detailclip')
    wrapper = toy_wrapper((1e-3, 2e-3))
    sched = PARAM_SCHEDULERS.build(
        dict(type='WarmupCosineLR', warmup_epochs=1, by_epoch=True, convert_to_iter_based=True, end=3),
        default_args=dict(optimizer=wrapper, epoch_length=10))
    assert isinstance(sched, WarmupCosineLR)
    assert (sched.warmup, sched.begin, sched.end, sched.by_epoch) == (10, 0, 30, False)
    seen = scheduled_lrs(wrapper, sched, 30)
    for g, peak in enumerate((1e-3, 2e-3)):
        np.testing.assert_allclose(seen[:, g], reference_schedule(peak, 1e-6, 1e-5, 10, 30), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(seen[:, g], [warmup_cosine(i, 30, 10, peak, 1e-6, 1e-5) for i in range(30)],
                                   rtol=1e-9, atol=1e-15)
    assert seen[0, 0] == pytest.approx(1e-6) and seen[9, 0] == pytest.approx(1e-3)


def test_scheduler_from_tiny_config_and_in_iterations(cfg):
    init_default_scope('detailclip')
    sched_cfg = dict(cfg.param_scheduler[0], end=2)
    wrapper = toy_wrapper((5e-4, ))
    sched = PARAM_SCHEDULERS.build(sched_cfg, default_args=dict(optimizer=wrapper, epoch_length=4))
    np.testing.assert_allclose(scheduled_lrs(wrapper, sched, 8)[:, 0], reference_schedule(5e-4, 1e-6, 1e-5, 4, 8),
                               rtol=1e-9)
    # in iterations directly
    wrapper = toy_wrapper((5e-4, ))
    sched = WarmupCosineLR(wrapper, warmup_iters=4, start_lr=1e-6, end_lr=1e-5, end=8)
    np.testing.assert_allclose(scheduled_lrs(wrapper, sched, 8)[:, 0], reference_schedule(5e-4, 1e-6, 1e-5, 4, 8),
                               rtol=1e-9)
    with pytest.raises(ValueError):
        WarmupCosineLR(toy_wrapper(), warmup_iters=4)  # no finite end
    with pytest.raises(ValueError):
        PARAM_SCHEDULERS.build(dict(type='WarmupCosineLR', by_epoch=True, convert_to_iter_based=True),
                               default_args=dict(optimizer=toy_wrapper(), epoch_length=4))  # end missing


# --------------------------------------------------------------------------------------------------------- autocast
def test_autocast_wrapper_bf16_on_cpu():
    torch.manual_seed(0)
    model = nn.Linear(8, 4)
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = OPTIM_WRAPPERS.build(dict(type='AutocastOptimWrapper', device_type='cpu',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert isinstance(wrapper, AutocastOptimWrapper) and wrapper.dtype == torch.bfloat16
    x = torch.randn(3, 8)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16
    # outside the context the model is fp32 again
    assert model(x).dtype == torch.float32
    # bf16 output is the fp32 result up to bf16 rounding
    torch.testing.assert_close(out.float(), model(x), rtol=2e-2, atol=2e-2)
    loss = out.float().pow(2).sum()
    wrapper.update_params(loss)
    for p in model.parameters():
        assert p.dtype == torch.float32
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert all(changed)
    # SGD step: p - lr * grad, grad of the fp32 copy of the bf16 forward
    with torch.no_grad():
        grad_w = 2 * (before[0] @ x.T + before[1][:, None]).T
    expected_b = before[1] - 0.1 * grad_w.sum(0)
    torch.testing.assert_close(model.bias.detach(), expected_b, rtol=5e-2, atol=5e-2)
