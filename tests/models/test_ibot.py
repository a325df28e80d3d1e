"""iBOT/DINO head, losses and objectives against naive references (loops over views, samples and patches)."""
import copy
import itertools
import math
import warnings

import pytest
import torch
from torch import nn

from detailclip.models.heads.ibot_head import DINOHead, IBOTHead
from detailclip.models.losses import ibot_loss
from detailclip.models.losses.ibot_loss import DINOLoss, IBOTLoss
from detailclip.models.objectives.dino import DINOObjective
from detailclip.models.objectives.ibot import IBOTObjective
from detailclip.registry import MODELS

D, K, K2 = 8, 12, 10


# ----------------------------------------------------------------------------------------------------- references
def _reference_head(in_dim, out_dim, hidden, bottleneck, shared):
    """The iBOT reference head built as in its models/head.py (nn.utils.weight_norm, g filled with 1)."""
    mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                        nn.Linear(hidden, bottleneck))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        last = nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        last2 = last if shared else nn.utils.weight_norm(nn.Linear(bottleneck, out_dim + 3, bias=False))
    for layer in (last, last2):
        layer.weight_g.data.fill_(1)
    ref = nn.Module()
    ref.mlp, ref.last_layer, ref.last_layer2 = mlp, last, last2
    return ref


def _softmax(x):
    e = torch.exp(x - x.max())
    return e / e.sum()


def _log_softmax(x):
    return x - x.max() - torch.log(torch.exp(x - x.max()).sum())


def _h(t, s, center, t_temp, s_temp):
    """H(softmax((t - c)/tau_t), softmax(s/tau_s)) for one token, written out."""
    return -(_softmax((t - center) / t_temp) * _log_softmax(s / s_temp)).sum()


def reference_cls(s_cls, t_cls, center, t_temp, s_temp=0.1):
    """Mean over teacher views q and student views v != q of the sample mean of H."""
    terms = []
    for q, v in itertools.product(range(t_cls.shape[0]), range(s_cls.shape[0])):
        if q != v:
            batch = s_cls.shape[1]
            terms.append(sum(_h(t_cls[q, b], s_cls[v, b], center, t_temp, s_temp) for b in range(batch)) / batch)
    return sum(terms) / len(terms)


def reference_patch(s_patch, t_patch, masks, patch_center, t_temp, s_temp=0.1):
    """Mean over views and samples of sum_n M H / max(1, sum_n M)."""
    num_views, batch, num_patches = masks.shape
    total = 0
    for p, b in itertools.product(range(num_views), range(batch)):
        terms = [_h(t_patch[p, b, n], s_patch[p, b, n], patch_center, t_temp, s_temp)
                 for n in range(num_patches) if masks[p, b, n]]
        total = total + sum(terms) / max(1, len(terms))
    return total / (num_views * batch)


# -------------------------------------------------------------------------------------------------------- helpers
def _randn(*shape, gen, grad=False, scale=3.0):
    return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).requires_grad_(grad)


def _masks(num_views, batch, num_patches, gen, kind):
    if kind == 'random':
        masks = torch.rand(num_views, batch, num_patches, generator=gen) < 0.5
        masks[0, 0] = False  # a sample with nothing masked: max(1, 0) in the denominator
        masks[-1, -1, 0] = True
        return masks
    if kind == 'none':
        return torch.zeros(num_views, batch, num_patches, dtype=torch.bool)
    return torch.ones(num_views, batch, num_patches, dtype=torch.bool)


def _ibot_loss(out_dim=K, patch_out_dim=K2, centers=True, gen=None):
    loss = IBOTLoss(out_dim, patch_out_dim).double()
    if centers:
        loss.cls_center.copy_(torch.randn(1, out_dim, generator=gen))
        loss.patch_center.copy_(torch.randn(1, 1, patch_out_dim, generator=gen))
    return loss


def _tiny_head(**kw):
    return IBOTHead(D, out_dim=K, hidden_dim=16, bottleneck_dim=6, **kw).double()


# ----------------------------------------------------------------------------------------------------------- head
@pytest.mark.parametrize('norm', [None, 'bn', 'ln'])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
@pytest.mark.parametrize('shared', [True, False])
def test_head_shapes(norm, num_layers, shared):
    head = IBOTHead(D, out_dim=K, hidden_dim=16, bottleneck_dim=6, num_layers=num_layers, norm=norm,
                    shared_patch_head=shared, patch_out_dim=None if shared else K2)
    x = torch.randn(2, 5, D)
    assert head(x).shape == (2, 5, K)
    assert head(x, patch=True).shape == (2, 5, K if shared else K2)
    assert head(x[:, 0]).shape == (2, K)
    assert sum(isinstance(m, nn.Linear) for m in head.mlp) == num_layers
    head.eval()  # BatchNorm: running statistics, so tokens are independent
    torch.testing.assert_close(head(x)[:, 0], head(x[:, 0]))


def test_head_layout_and_init():
    head = IBOTHead(64, out_dim=K, hidden_dim=512, bottleneck_dim=32)
    sd = head.state_dict()
    assert set(sd) == {f'mlp.{i}.{p}' for i in (0, 2, 4) for p in ('weight', 'bias')} | \
        {'last_layer.weight_g', 'last_layer.weight_v'}
    assert sd['last_layer.weight_g'].shape == (K, 1) and sd['last_layer.weight_v'].shape == (K, 32)
    for i in (0, 2, 4):
        assert torch.all(sd[f'mlp.{i}.bias'] == 0)
        assert abs(sd[f'mlp.{i}.weight'].std().item() - 0.02) < 0.003
    assert torch.all(sd['last_layer.weight_g'] == 1)
    assert not head.last_layer.weight_g.requires_grad
    assert isinstance(MODELS.build(dict(type='DINOHead', in_dim=D, out_dim=K)), DINOHead)


@pytest.mark.parametrize('shared', [True, False])
def test_head_loads_reference_state_dict(shared):
    torch.manual_seed(0)
    ref = _reference_head(D, K, 16, 6, shared)
    head = IBOTHead(D, out_dim=K, hidden_dim=16, bottleneck_dim=6, shared_patch_head=shared,
                    patch_out_dim=K if shared else K + 3)
    state = ref.state_dict()
    if shared:  # the reference lists its shared patch layer twice
        state = {k: v for k, v in state.items() if not k.startswith('last_layer2.')}
    head.load_state_dict(state, strict=True)
    x = torch.randn(3, 4, D)
    z = nn.functional.normalize(ref.mlp(x), dim=-1)
    torch.testing.assert_close(head(x), ref.last_layer(z))
    torch.testing.assert_close(head(x, patch=True), ref.last_layer2(z))


@pytest.mark.parametrize('norm_last_layer', [True, False])
def test_last_layer_norm_fixed(norm_last_layer):
    head = _tiny_head(norm_last_layer=norm_last_layer)
    opt = torch.optim.AdamW(head.parameters(), lr=0.1, weight_decay=0.5)
    head(torch.randn(4, 3, D, dtype=torch.float64)).pow(2).sum().backward()
    opt.step()
    g = head.last_layer.weight_g
    assert torch.all(g == 1) == norm_last_layer
    weight = head.last_layer.weight_v * (g / head.last_layer.weight_v.norm(dim=1, keepdim=True))
    if norm_last_layer:
        torch.testing.assert_close(weight.norm(dim=1), torch.ones(K, dtype=torch.float64))


def test_head_deepcopy_after_forward_and_errors():
    head = _tiny_head()
    head(torch.randn(2, D, dtype=torch.float64)).sum().backward()
    teacher_head = copy.deepcopy(head)  # what the EMA teacher does
    x = torch.randn(2, D, dtype=torch.float64)
    torch.testing.assert_close(teacher_head(x), head(x))
    with pytest.raises(ValueError, match='patch_out_dim'):
        IBOTHead(D, out_dim=K, patch_out_dim=K2)
    with pytest.raises(ValueError, match='norm'):
        IBOTHead(D, norm='gn')


# ------------------------------------------------------------------------------------------------------ IBOTLoss
@pytest.mark.parametrize('num_views,num_teacher', [(2, 2), (3, 3), (4, 2), (1, 1)])
@pytest.mark.parametrize('batch,num_patches', [(1, 1), (3, 4), (2, 7)])
@pytest.mark.parametrize('mask_kind', ['random', 'none', 'all'])
def test_ibot_loss_matches_reference(num_views, num_teacher, batch, num_patches, mask_kind):
    gen = torch.Generator().manual_seed(num_views * 100 + batch * 10 + num_patches)
    s_cls, t_cls = _randn(num_views, batch, K, gen=gen, grad=True), _randn(num_teacher, batch, K, gen=gen)
    s_patch = _randn(num_teacher, batch, num_patches, K2, gen=gen, grad=True)
    t_patch = _randn(num_teacher, batch, num_patches, K2, gen=gen)
    masks = _masks(num_teacher, batch, num_patches, gen, mask_kind)
    loss_fn = _ibot_loss(gen=gen)
    loss_fn.set_teacher_temp(cls=0.05, patch=0.07)
    c, c2 = loss_fn.cls_center.clone(), loss_fn.patch_center.clone()
    loss_cls, loss_patch = loss_fn(s_cls, s_patch, t_cls, t_patch, masks)

    ref_patch = reference_patch(s_patch, t_patch, masks, c2[0, 0], 0.07)
    if num_views == 1:
        assert loss_cls.item() == 0
    else:
        ref_cls = reference_cls(s_cls, t_cls, c[0], 0.05)
        torch.testing.assert_close(loss_cls, ref_cls)
        torch.testing.assert_close(torch.autograd.grad(loss_cls, s_cls)[0], torch.autograd.grad(ref_cls, s_cls)[0])
    torch.testing.assert_close(loss_patch, torch.as_tensor(ref_patch, dtype=torch.float64))
    if mask_kind != 'none':
        torch.testing.assert_close(torch.autograd.grad(loss_patch, s_patch)[0],
                                   torch.autograd.grad(ref_patch, s_patch)[0])


def test_ibot_loss_two_views_is_half_sum():
    gen = torch.Generator().manual_seed(1)
    s_cls, t_cls = _randn(2, 3, K, gen=gen), _randn(2, 3, K, gen=gen)
    loss_cls, _ = IBOTLoss(K, K2).double()(s_cls, None, t_cls, None, None)
    h = [sum(_h(t_cls[q, b], s_cls[v, b], 0, 0.04, 0.1) for b in range(3)) / 3 for q, v in ((0, 1), (1, 0))]
    torch.testing.assert_close(loss_cls, 0.5 * (h[0] + h[1]))


def test_patch_loss_ignores_unmasked_positions():
    gen = torch.Generator().manual_seed(2)
    s_patch, t_patch = _randn(2, 3, 5, K2, gen=gen), _randn(2, 3, 5, K2, gen=gen)
    s_cls, t_cls = _randn(2, 3, K, gen=gen), _randn(2, 3, K, gen=gen)
    masks = _masks(2, 3, 5, gen, 'random')
    _, before = IBOTLoss(K, K2).double()(s_cls, s_patch, t_cls, t_patch, masks)
    noise = torch.randn(s_patch.shape, generator=gen, dtype=torch.float64) * (~masks)[..., None]
    _, after = IBOTLoss(K, K2).double()(s_cls, s_patch + noise, t_cls, t_patch + noise, masks)
    torch.testing.assert_close(before, after)
    _, changed = IBOTLoss(K, K2).double()(s_cls, s_patch + noise.flip(-2), t_cls, t_patch, masks)
    assert not torch.allclose(before, changed)


@pytest.mark.parametrize('momentum', [0.9, 0.5])
def test_centres_update_with_momentum_and_batch_means(momentum):
    gen = torch.Generator().manual_seed(3)
    s_cls, t_cls = _randn(2, 4, K, gen=gen), _randn(2, 4, K, gen=gen)
    s_patch, t_patch = _randn(2, 4, 6, K2, gen=gen), _randn(2, 4, 6, K2, gen=gen)
    loss_fn = _ibot_loss(gen=gen)
    loss_fn.cls_center_momentum = loss_fn.patch_center_momentum = momentum
    c, c2 = loss_fn.cls_center.clone(), loss_fn.patch_center.clone()
    loss_fn(s_cls, s_patch, t_cls, t_patch, _masks(2, 4, 6, gen, 'random'))
    cls_mean = sum(t_cls[v, b] for v in range(2) for b in range(4)) / 8
    patch_mean = sum(t_patch[v, b].mean(0) for v in range(2) for b in range(4)) / 8
    torch.testing.assert_close(loss_fn.cls_center, momentum * c + (1 - momentum) * cls_mean[None])
    torch.testing.assert_close(loss_fn.patch_center, momentum * c2 + (1 - momentum) * patch_mean[None, None])


def test_centres_use_global_mean(monkeypatch):
    """Under a faked world of two ranks the centre moves towards the mean of both ranks' batch means."""
    other_rank = {K: torch.full((K, ), 4.0, dtype=torch.float64), K2: torch.full((K2, ), -2.0, dtype=torch.float64)}
    monkeypatch.setattr(ibot_loss, 'all_reduce_mean', lambda x: (x + other_rank[x.shape[0]]) / 2)
    gen = torch.Generator().manual_seed(4)
    t_cls, t_patch = _randn(2, 3, K, gen=gen), _randn(2, 3, 5, K2, gen=gen)
    loss_fn = _ibot_loss(centers=False)
    loss_fn(t_cls.clone(), t_patch.clone(), t_cls, t_patch, _masks(2, 3, 5, gen, 'all'))
    torch.testing.assert_close(loss_fn.cls_center[0], 0.1 * (t_cls.mean((0, 1)) + other_rank[K]) / 2)
    torch.testing.assert_close(loss_fn.patch_center[0, 0], 0.1 * (t_patch.mean((0, 1, 2)) + other_rank[K2]) / 2)


def test_centres_are_checkpointed():
    gen = torch.Generator().manual_seed(5)
    args = (_randn(2, 3, K, gen=gen), _randn(2, 3, 4, K2, gen=gen), _randn(2, 3, K, gen=gen),
            _randn(2, 3, 4, K2, gen=gen), _masks(2, 3, 4, gen, 'random'))
    trained = _ibot_loss(centers=False)
    trained(*args)
    state = trained.state_dict()
    assert set(state) == {'cls_center', 'patch_center'} and state['cls_center'].abs().sum() > 0
    resumed = _ibot_loss(centers=False)
    resumed.load_state_dict(state)
    for got, want in zip(resumed(*args), trained(*args)):
        torch.testing.assert_close(got, want)
    assert IBOTLoss(K, K2).cls_center.dtype == torch.float32


def test_no_patch_term_and_shape_errors():
    gen = torch.Generator().manual_seed(6)
    loss_fn = IBOTLoss(K, K2).double()
    s_cls, t_cls = _randn(2, 3, K, gen=gen, grad=True), _randn(2, 3, K, gen=gen)
    _, loss_patch = loss_fn(s_cls, None, t_cls, None, None)
    assert loss_patch.item() == 0 and torch.all(loss_fn.patch_center == 0)
    s_patch = _randn(2, 3, 4, K2, gen=gen)
    with pytest.raises(ValueError, match='patch term'):
        loss_fn(s_cls, s_patch, t_cls, s_patch, torch.ones(2, 3, 4))  # float masks
    with pytest.raises(ValueError, match='V_t <= V'):
        loss_fn(s_cls, None, _randn(3, 3, K, gen=gen), None, None)


def test_patch_loss_from_masked_teacher_logits_and_their_mean():
    """Teacher logits at the masked positions with their mean over every position: the loss and the centres of the
    full (P, B, N, K2) teacher logits; without the mean, or with mismatched rows, a clear error."""
    gen = torch.Generator().manual_seed(7)
    s_cls, t_cls = _randn(2, 3, K, gen=gen), _randn(2, 3, K, gen=gen)
    s_patch, t_patch = _randn(2, 3, 5, K2, gen=gen), _randn(2, 3, 5, K2, gen=gen)
    masks = _masks(2, 3, 5, gen, 'random')
    full, masked = _ibot_loss(centers=False), _ibot_loss(centers=False)
    want = full(s_cls, s_patch[masks], t_cls, t_patch, masks)
    got = masked(s_cls, s_patch[masks], t_cls, t_patch[masks], masks, t_patch.mean((0, 1, 2)))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(masked.patch_center, full.patch_center)
    with pytest.raises(ValueError, match='mean over every position'):
        masked(s_cls, s_patch[masks], t_cls, t_patch[masks], masks)
    with pytest.raises(ValueError, match='patch term'):
        masked(s_cls, s_patch[masks][1:], t_cls, t_patch[masks], masks, t_patch.mean((0, 1, 2)))


def test_head_prototypes_of_the_mean_embedding_are_the_mean_logits():
    head = _tiny_head(shared_patch_head=False, patch_out_dim=K2)
    x = torch.randn(3, 4, D, dtype=torch.float64)
    torch.testing.assert_close(head(x, patch=True), head.prototypes(head.embed(x), patch=True))
    torch.testing.assert_close(head.prototypes(head.embed(x).mean((0, 1)), patch=True),
                               head(x, patch=True).mean((0, 1)))


@pytest.mark.parametrize('bad', [0, -0.1, float('nan'), float('inf'), '0.04', True])
def test_teacher_temp_setter(bad):
    loss_fn = IBOTLoss(K, K2)
    assert (loss_fn.cls_teacher_temp, loss_fn.patch_teacher_temp) == (0.04, 0.04)
    loss_fn.set_teacher_temp(patch=0.07)
    assert (loss_fn.cls_teacher_temp, loss_fn.patch_teacher_temp) == (0.04, 0.07)
    with pytest.raises(ValueError, match='patch'):
        loss_fn.set_teacher_temp(patch=bad)
    with pytest.raises(ValueError, match='cls'):
        DINOLoss(K).set_teacher_temp(cls=bad)
    assert loss_fn.patch_teacher_temp == 0.07


# ------------------------------------------------------------------------------------------------------ DINOLoss
@pytest.mark.parametrize('batch', [1, 3])
def test_dino_loss_matches_pair_loop(batch):
    """2 global + 2 local crops: every teacher global crop against every other student crop."""
    gen = torch.Generator().manual_seed(7)
    s_cls, t_cls = _randn(4, batch, K, gen=gen, grad=True), _randn(2, batch, K, gen=gen)
    loss_fn = DINOLoss(K).double()
    loss_fn.center.copy_(torch.randn(1, K, generator=gen))
    loss_fn.set_teacher_temp(cls=0.06)
    c = loss_fn.center.clone()
    loss = loss_fn(s_cls, t_cls)
    pairs = [(q, v) for q in range(2) for v in range(4) if v != q]
    assert len(pairs) == 6
    ref = sum(_h(t_cls[q, b], s_cls[v, b], c[0], 0.06, 0.1) for q, v in pairs for b in range(batch)) / (6 * batch)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(torch.autograd.grad(loss, s_cls)[0], torch.autograd.grad(ref, s_cls)[0])
    torch.testing.assert_close(loss_fn.center, 0.9 * c + 0.1 * t_cls.mean((0, 1))[None])


# ---------------------------------------------------------------------------------------------------- objectives
def _context(gen, num_views=2, batch=3, num_patches=4, num_kept=None, masks=True, decoded=False, num_teacher=2):
    """A hand-built pretrainer context: student tokens (kept patches only when ``num_kept``), teacher tokens."""
    kept = num_patches if num_kept is None else num_kept
    tokens = [_randn(batch, 1 + kept, D, gen=gen, grad=True, scale=1.0) for _ in range(num_views)]
    mask_list = [_masks(1, batch, num_patches, gen, 'random')[0] if masks and v < num_teacher else None
                 for v in range(num_views)]
    context = dict(views=[None] * num_views, image_tokens=tokens, masks=mask_list,
                   teacher=dict(tokens=[_randn(batch, 1 + num_patches, D, gen=gen, scale=1.0)
                                        for _ in range(num_teacher)]))
    if decoded:  # the MAE decoder's outputs at every position, and at the removed ones (the same number per row)
        removed = num_patches - kept
        for v in range(min(num_views, num_teacher)):
            mask_list[v] = torch.rand(batch, num_patches, generator=gen).argsort(1).argsort(1) < removed
        context['decoded'] = [_randn(batch, 1 + num_patches, D, gen=gen, grad=True, scale=1.0)
                              for _ in range(num_views)]
        context['decoded_masked'] = [d[:, 1:][m].view(batch, removed, D) if m is not None else None
                                     for d, m in zip(context['decoded'], mask_list)]
    return context


def _objective_and_teacher_copies(gen, **kw):
    objective = IBOTObjective(head=dict(in_dim=D, out_dim=K, hidden_dim=16, bottleneck_dim=6), **kw).double()
    teacher_head = copy.deepcopy(objective.head).requires_grad_(False)
    with torch.no_grad():
        for p in teacher_head.mlp.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return objective, dict(head=teacher_head)


@pytest.mark.parametrize('positions', ['masked', 'all'])
@pytest.mark.parametrize('patch_source', ['encoder', 'decoder'])
def test_ibot_objective_matches_reference(patch_source, positions):
    gen = torch.Generator().manual_seed(8)
    decoder = patch_source == 'decoder'
    context = _context(gen, num_kept=2 if decoder else None, decoded=decoder)
    objective, teacher_copies = _objective_and_teacher_copies(gen, cls_weight=0.5, patch_weight=2.0,
                                                              patch_source=patch_source, patch_positions=positions)
    assert objective.requires == (('decoded_masked', ) if positions == 'masked' else ('decoded', )) * decoder
    objective.set_teacher_temp(cls=0.04, patch=0.07)
    out = objective(context, teacher_copies)
    assert set(out) == {'loss_ibot_cls', 'loss_ibot_patch'}

    head, t_head = objective.head, teacher_copies['head']
    source = context['decoded'] if decoder else context['image_tokens']
    s_cls = torch.stack([head(t[:, 0]) for t in context['image_tokens']])
    s_patch = torch.stack([head(t[:, 1:], patch=True) for t in source])
    with torch.no_grad():
        t_cls = torch.stack([t_head(t[:, 0]) for t in context['teacher']['tokens']])
        t_patch = torch.stack([t_head(t[:, 1:], patch=True) for t in context['teacher']['tokens']])
    ref_cls = 0.5 * reference_cls(s_cls, t_cls, 0, 0.04)
    ref_patch = 2.0 * reference_patch(s_patch, t_patch, torch.stack(context['masks']), 0, 0.07)
    torch.testing.assert_close(out['loss_ibot_cls'], ref_cls)
    torch.testing.assert_close(out['loss_ibot_patch'], ref_patch)
    leaves = context['image_tokens'] + (context['decoded'] if decoder else []) + list(head.parameters())[:2]
    got = torch.autograd.grad(out['loss_ibot_cls'] + out['loss_ibot_patch'], leaves)
    want = torch.autograd.grad(ref_cls + ref_patch, leaves)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    assert all(p.grad is None for p in t_head.parameters())
    assert objective.loss.cls_center.abs().sum() > 0  # the loss updated its centre
    # c2 from the teacher's mean embedding (its logits at the masked positions only) = momentum 0.9 towards the mean
    # logit over every patch
    torch.testing.assert_close(objective.loss.patch_center.view(-1), 0.1 * t_patch.mean((0, 1, 2)))


def test_ibot_objective_multicrop_and_unmasked_views():
    gen = torch.Generator().manual_seed(9)
    context = _context(gen, num_views=3, num_teacher=2)
    context['image_tokens'][2] = _randn(3, 2, D, gen=gen, grad=True, scale=1.0)  # a local crop: 1 patch
    context['masks'][1] = None  # only the first pair has a patch term
    objective, teacher_copies = _objective_and_teacher_copies(gen)
    out = objective(context, teacher_copies)
    head, t_head = objective.head, teacher_copies['head']
    s_cls = torch.stack([head(t[:, 0]) for t in context['image_tokens']])
    with torch.no_grad():
        t_cls = torch.stack([t_head(t[:, 0]) for t in context['teacher']['tokens']])
        t_patch = t_head(context['teacher']['tokens'][0][None, :, 1:], patch=True)
    s_patch = head(context['image_tokens'][0][None, :, 1:], patch=True)
    torch.testing.assert_close(out['loss_ibot_cls'], reference_cls(s_cls, t_cls, 0, 0.04))
    torch.testing.assert_close(out['loss_ibot_patch'], reference_patch(s_patch, t_patch, context['masks'][0][None],
                                                                       0, 0.04))


def test_ibot_objective_without_masks_and_errors():
    gen = torch.Generator().manual_seed(10)
    objective, teacher_copies = _objective_and_teacher_copies(gen)
    out = objective(_context(gen, masks=False), teacher_copies)
    assert out['loss_ibot_patch'].item() == 0 and out['loss_ibot_cls'].item() > 0
    decoder_objective, teacher_copies = _objective_and_teacher_copies(gen, patch_source='decoder')
    with pytest.raises(ValueError, match='decoded'):
        decoder_objective(_context(gen, num_kept=2), teacher_copies)
    with pytest.raises(ValueError, match='"decoder"'):
        objective(_context(gen, num_kept=2), teacher_copies)
    with pytest.raises(ValueError, match='patch_source'):
        IBOTObjective(head=dict(in_dim=D), patch_source='pixels')
    built = MODELS.build(dict(type='IBOTObjective', head=dict(in_dim=D, out_dim=K, patch_out_dim=K,
                                                              bottleneck_dim=6, hidden_dim=16)))
    assert built.needs_teacher and built.teacher_modules == ('head', )
    assert built.loss.cls_center.shape == (1, K) and built.loss.patch_center.shape == (1, 1, K)


@pytest.mark.parametrize('global_views', [(0, 1), (1, 2)])
def test_dino_objective_matches_pair_loop(global_views):
    gen = torch.Generator().manual_seed(11)
    tokens = [_randn(2, 1 + n, D, gen=gen, grad=True, scale=1.0) for n in (4, 4, 1, 1)]
    if global_views == (1, 2):
        tokens = [tokens[2], tokens[0], tokens[1], tokens[3]]
    teacher = [_randn(2, 1 + 4, D, gen=gen, scale=1.0) for _ in range(4)]
    context = dict(views=[None] * 4, image_tokens=tokens, teacher=dict(tokens=teacher))
    objective = DINOObjective(head=dict(in_dim=D, out_dim=K, hidden_dim=16, bottleneck_dim=6), weight=0.3,
                              global_views=global_views).double()
    teacher_copies = dict(head=copy.deepcopy(objective.head).requires_grad_(False))
    objective.set_teacher_temp(cls=0.07)
    out = objective(context, teacher_copies)
    s_cls = [objective.head(t[:, 0]) for t in tokens]
    with torch.no_grad():
        t_cls = {q: teacher_copies['head'](teacher[q][:, 0]) for q in global_views}
    ref = sum(_h(t_cls[q][b], s_cls[v][b], 0, 0.07, 0.1) for q in global_views for v in range(4) if v != q
              for b in range(2)) / (6 * 2)
    torch.testing.assert_close(out['loss_dino'], 0.3 * ref)
    for got, want in zip(torch.autograd.grad(out['loss_dino'], tokens), torch.autograd.grad(0.3 * ref, tokens)):
        torch.testing.assert_close(got, want)
    assert math.isfinite(out['loss_dino'].item())
