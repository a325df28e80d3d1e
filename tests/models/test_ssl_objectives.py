"""SimCLR, BYOL and supervised objectives, their MLP heads and the all-reduce BatchNorm.

Losses are compared with naive row-by-row references (forward and backward), single process and under a faked
rank; the BatchNorm and SimCLR (with its head, under DDP) are also run in a real 2-process gloo group and compared
with one process on the concatenated batch.
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from torch import nn

from detailclip.models import layers
from detailclip.models.heads.mlp import MLPHead
from detailclip.models.layers import AllReduceBatchNorm1d
from detailclip.models.losses import ssl_losses
from detailclip.models.losses.ssl_losses import BYOLLoss, SimCLRLoss
from detailclip.models.objectives.ssl import BYOLObjective, SimCLRObjective
from detailclip.models.objectives.supervised import SupervisedObjective
from detailclip.registry import MODELS
from detailclip.testing import run_gloo

WORLD, BATCH, CHANNELS, IN_DIM = 2, 3, 4, 5


def _norm(x):
    return x / x.norm(dim=-1, keepdim=True)


def _randn(*shape, seed=0, grad=False):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(grad)


# ---------------------------------------------------------------- naive references


def nt_xent_reference(emb_a, emb_b, tau, rows):
    """NT-Xent over the 2N embeddings [a; b] ((N, d) each) with the full 2N x 2N similarity, averaged over the view-a
    rows ``rows`` and their view-b partners. Returns (loss, accuracy in % of the view-a rows)."""
    z = torch.cat([_norm(emb_a), _norm(emb_b)])
    n = emb_a.shape[0]
    sim = z @ z.t() / tau
    terms, hits = [], []
    for i in list(rows) + [n + r for r in rows]:
        others = [j for j in range(2 * n) if j != i]
        positive = (i + n) % (2 * n)
        terms.append(torch.logsumexp(sim[i, others], dim=0) - sim[i, positive])
        hits.append(others[int(sim[i, others].argmax())] == positive)
    return sum(terms) / len(terms), 100.0 * sum(hits[:len(rows)]) / len(rows)


def byol_reference(preds, target):
    """Mean over views v and samples b of 2 - 2 cos(p_vb, z_b); preds (V, B, d), target (B, d)."""
    terms = [2 - 2 * torch.dot(_norm(preds[v, b]), _norm(target[b]))
             for v in range(preds.shape[0]) for b in range(preds.shape[1])]
    return sum(terms) / len(terms)


def batchnorm_reference(x, weight, bias, eps=1e-5):
    """Per-channel normalisation of (B, C) x with the batch mean and biased variance, written out."""
    columns = []
    for c in range(x.shape[1]):
        col = x[:, c]
        mean = col.sum() / len(col)
        var = ((col - mean) ** 2).sum() / len(col)
        columns.append((col - mean) / torch.sqrt(var + eps) * weight[c] + bias[c])
    return torch.stack(columns, dim=1)


# ---------------------------------------------------------------- AllReduceBatchNorm1d, single process


def _bn_pair(num_features, momentum, affine=True, track=True):
    ref = nn.BatchNorm1d(num_features, momentum=momentum, affine=affine, track_running_stats=track).double()
    if affine:
        with torch.no_grad():
            ref.weight.copy_(_randn(num_features, seed=5))
            ref.bias.copy_(_randn(num_features, seed=6))
    ours = AllReduceBatchNorm1d(num_features, momentum=momentum, affine=affine, track_running_stats=track).double()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _assert_bn_steps_match(ours, ref, shape, steps=2):
    """Train-mode forward/backward for ``steps`` batches, then an eval forward: outputs, grads, buffers equal."""
    for step in range(steps):
        x = _randn(*shape, seed=10 + step) * 3 + 1
        g = _randn(*shape, seed=20 + step)
        outs = []
        for module in (ours, ref):
            xi = x.clone().requires_grad_(True)
            y = module(xi)
            (y * g).sum().backward()
            outs.append((y, xi.grad))
        for got, want in zip(*outs):
            torch.testing.assert_close(got, want)
    for (name, got), want in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(got, want, msg=name)
    for got, want in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(got.grad, want.grad)
    ours.eval(), ref.eval()
    x = _randn(*shape, seed=30)
    torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize('shape', [(2, CHANNELS), (7, CHANNELS), (3, CHANNELS, 5)])
@pytest.mark.parametrize('momentum', [0.1, None])
def test_bn_single_process_is_batchnorm1d(shape, momentum):
    ours, ref = _bn_pair(CHANNELS, momentum)
    assert ours.state_dict().keys() == ref.state_dict().keys()
    _assert_bn_steps_match(ours, ref, shape)


@pytest.mark.parametrize('shape', [(2, CHANNELS), (7, CHANNELS), (3, CHANNELS, 5)])
@pytest.mark.parametrize('momentum,affine,track', [(0.1, True, True), (None, True, True), (0.3, False, True),
                                                   (0.1, True, False)])
def test_bn_all_reduce_path_with_one_rank_is_batchnorm1d(monkeypatch, shape, momentum, affine, track):
    """The cross-rank code path, its collective made the identity, reproduces BatchNorm1d exactly."""
    calls = []
    monkeypatch.setattr(layers, 'get_world_size', lambda: 2)
    monkeypatch.setattr(layers, 'all_reduce', lambda t: calls.append(t) or t.clone())
    ours, ref = _bn_pair(CHANNELS, momentum, affine, track)
    _assert_bn_steps_match(ours, ref, shape)
    assert len(calls) == 4 + 2 * (not track)  # two reductions per train step (and in eval without running stats)


def test_bn_low_precision_input(monkeypatch):
    monkeypatch.setattr(layers, 'get_world_size', lambda: 2)
    monkeypatch.setattr(layers, 'all_reduce', lambda t: t.clone())
    bn = AllReduceBatchNorm1d(CHANNELS)
    x = _randn(6, CHANNELS).float() * 100 + 1000
    y = bn(x.bfloat16())
    assert y.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32
    want = batchnorm_reference(x.bfloat16().double(), bn.weight.double(), bn.bias.double())
    torch.testing.assert_close(y.double(), want, atol=0.02, rtol=0.01)


def test_bn_matches_written_out_reference():
    bn = AllReduceBatchNorm1d(CHANNELS).double()
    x = _randn(5, CHANNELS, grad=True)
    torch.testing.assert_close(bn(x), batchnorm_reference(x, bn.weight, bn.bias))


# ---------------------------------------------------------------- SimCLRLoss


@pytest.mark.parametrize('batch', [1, 4])
@pytest.mark.parametrize('dim', [3, 8])
@pytest.mark.parametrize('tau', [0.1, 0.5])
def test_simclr_matches_reference(batch, dim, tau):
    emb_a, emb_b = _randn(batch, dim, seed=1, grad=True), _randn(batch, dim, seed=2, grad=True)
    loss, acc = SimCLRLoss(tau)(emb_a, emb_b)
    ref, ref_acc = nt_xent_reference(emb_a, emb_b, tau, range(batch))
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(acc, torch.tensor(ref_acc, dtype=torch.float32))
    for got, want in zip(torch.autograd.grad(loss, (emb_a, emb_b)), torch.autograd.grad(ref, (emb_a, emb_b))):
        torch.testing.assert_close(got, want)
    if batch == 1:  # the positive is the only unmasked candidate
        torch.testing.assert_close(loss, torch.zeros((), dtype=torch.float64))


@pytest.mark.parametrize('batch', [1, 4])
def test_simclr_fake_rank_one_of_two(monkeypatch, batch):
    """As rank 1 of 2: the other rank's keys come first, labels are offset by B, the gather keeps gradients."""
    other_a, other_b = _randn(batch, 6, seed=3), _randn(batch, 6, seed=4)
    others = torch.stack([_norm(other_a), _norm(other_b)], dim=1)
    modes = []
    monkeypatch.setattr(ssl_losses, 'get_rank', lambda: 1)
    monkeypatch.setattr(ssl_losses, 'gather_features',
                        lambda x, with_grad=True: modes.append(with_grad) or torch.cat([others, x]))

    emb_a, emb_b = _randn(batch, 6, seed=1, grad=True), _randn(batch, 6, seed=2, grad=True)
    loss, acc = SimCLRLoss()(emb_a, emb_b)
    ref, ref_acc = nt_xent_reference(torch.cat([other_a, emb_a]), torch.cat([other_b, emb_b]), 0.1,
                                     range(batch, 2 * batch))
    assert modes == [True]
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(acc, torch.tensor(ref_acc, dtype=torch.float32))
    for got, want in zip(torch.autograd.grad(loss, (emb_a, emb_b)), torch.autograd.grad(ref, (emb_a, emb_b))):
        torch.testing.assert_close(got, want)

    # Both views equal and orthogonal to the other rank: 100 % only if the labels point at rows B..2B-1.
    local = torch.eye(8, dtype=torch.float64)[4:4 + batch]
    others = torch.eye(8, dtype=torch.float64)[:batch, None].expand(batch, 2, 8)
    _, acc = SimCLRLoss()(local, local)
    torch.testing.assert_close(acc, torch.tensor(100.0))


def test_simclr_half_precision_masking():
    emb_a, emb_b = _randn(4, 8, seed=1), _randn(4, 8, seed=2)
    loss, _ = SimCLRLoss()(emb_a.bfloat16(), emb_b.bfloat16())
    ref, _ = nt_xent_reference(emb_a, emb_b, 0.1, range(4))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), ref, atol=0.05, rtol=0.02)


# ---------------------------------------------------------------- BYOLLoss


@pytest.mark.parametrize('num_views', [1, 2])
@pytest.mark.parametrize('batch', [1, 4])
def test_byol_matches_reference_and_stops_target_gradient(num_views, batch):
    preds, target = _randn(num_views, batch, 6, seed=1, grad=True), _randn(batch, 6, seed=2, grad=True)
    loss = BYOLLoss()(preds, target)
    ref = byol_reference(preds, target.detach())
    torch.testing.assert_close(loss, ref)
    got, target_grad = torch.autograd.grad(loss, (preds, target), allow_unused=True)
    torch.testing.assert_close(got, torch.autograd.grad(ref, preds)[0])
    assert target_grad is None
    if num_views == 1:
        torch.testing.assert_close(BYOLLoss()(preds[0], target), loss)


def test_byol_known_values_and_bad_shapes():
    target = torch.eye(2)
    preds = torch.stack([torch.eye(2) * 3, -torch.eye(2)])  # aligned (loss 0), opposite (loss 4)
    torch.testing.assert_close(BYOLLoss()(preds, target), torch.tensor(2.0))
    with pytest.raises(ValueError, match='expected'):
        BYOLLoss()(torch.randn(2, 3, 4), torch.randn(2, 4))


# ---------------------------------------------------------------- MLPHead


@pytest.mark.parametrize('kwargs,layout', [
    (dict(in_dim=IN_DIM, hidden_dim=16, out_dim=8, num_layers=3),  # SLIP SimCLR MLP
     [(nn.Linear, (16, IN_DIM), True), AllReduceBatchNorm1d, nn.ReLU, (nn.Linear, (16, 16), True),
      AllReduceBatchNorm1d, nn.ReLU, (nn.Linear, (8, 16), True)]),
    (dict(in_dim=IN_DIM, hidden_dim=16, out_dim=8, num_layers=2, bias=False),  # A-CLIP BYOL projector
     [(nn.Linear, (16, IN_DIM), False), AllReduceBatchNorm1d, nn.ReLU, (nn.Linear, (8, 16), False)]),
    (dict(in_dim=8, hidden_dim=16, out_dim=8, num_layers=2, bias=False),  # A-CLIP BYOL predictor
     [(nn.Linear, (16, 8), False), AllReduceBatchNorm1d, nn.ReLU, (nn.Linear, (8, 16), False)]),
    (dict(in_dim=IN_DIM, hidden_dim=16, out_dim=8, num_layers=2, norm=None, act='gelu', last_norm=False),
     [(nn.Linear, (16, IN_DIM), True), nn.GELU, (nn.Linear, (8, 16), True)]),
    (dict(in_dim=IN_DIM, hidden_dim=16, out_dim=8, num_layers=1, last_norm=True),
     [(nn.Linear, (8, IN_DIM), True), AllReduceBatchNorm1d]),
])
def test_mlp_head_layout_and_gradients(kwargs, layout):
    head = MODELS.build(dict(type='MLPHead', **kwargs)).double()
    assert len(head) == len(layout)
    for module, want in zip(head, layout):
        if isinstance(want, tuple):
            assert isinstance(module, want[0]) and module.weight.shape == want[1]
            assert (module.bias is not None) == want[2]
        else:
            assert type(module) is want
    if kwargs.get('last_norm'):
        assert not head[-1].affine
    head(_randn(4, kwargs['in_dim'])).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


@pytest.mark.parametrize('kwargs', [dict(num_layers=0), dict(norm='ln'), dict(act='tanh'),
                                    dict(norm=None, last_norm=True)])
def test_mlp_head_bad_args(kwargs):
    with pytest.raises(ValueError, match='MLPHead'):
        MLPHead(**dict(dict(in_dim=4, hidden_dim=4, out_dim=4, num_layers=2), **kwargs))


# ---------------------------------------------------------------- objectives on a hand-built context


def _tokens(num_views, batch=4, num_tokens=5, dim=IN_DIM, seed=0):
    return [_randn(batch, 1 + num_tokens, dim, seed=seed + v, grad=True) for v in range(num_views)]


def _head_cfg(in_dim=IN_DIM, out_dim=8, num_layers=3, bias=True):
    return dict(type='MLPHead', in_dim=in_dim, hidden_dim=16, out_dim=out_dim, num_layers=num_layers, bias=bias)


def _assert_all_grads(module):
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('same_view,concat_views', [(False, False), (True, False), (False, True), (True, True)])
def test_simclr_objective(same_view, concat_views):
    objective = MODELS.build(dict(type='SimCLRObjective', head=_head_cfg(), weight=0.5, same_view=same_view,
                                  concat_views=concat_views)).double()
    tokens = _tokens(3)
    out = objective(dict(image_tokens=tokens), {})
    assert set(out) == {'loss_simclr', 'ssl_acc'}
    ref_head = copy.deepcopy(objective.head)
    cls_1, cls_2 = tokens[1][:, 0], tokens[2][:, 0]
    u_1, u_2 = ref_head(torch.cat([cls_1, cls_2])).chunk(2) if concat_views else (ref_head(cls_1), ref_head(cls_2))
    ref, ref_acc = nt_xent_reference(u_1, u_1 if same_view else u_2, 0.1, range(4))
    torch.testing.assert_close(out['loss_simclr'], 0.5 * ref)
    torch.testing.assert_close(out['ssl_acc'], torch.tensor(ref_acc, dtype=torch.float32))

    out['loss_simclr'].backward()
    _assert_all_grads(objective.head)
    assert tokens[0].grad is None  # view 0 feeds CLIP in SLIP
    for view in (1, 2):
        grad = tokens[view].grad
        if view == 2 and same_view and not concat_views:
            assert grad is None
            continue
        assert grad[:, 0].abs().sum() > 0 and not grad[:, 1:].any()  # only the CLS token is read


def test_simclr_objective_same_view_positive_is_one_over_tau():
    """Q-A1: with the first view twice, every positive logit is 1/tau and the loss ignores the second view."""
    objective = SimCLRObjective(head=_head_cfg(), views=(0, 1), same_view=True).double()
    tokens = _tokens(2)
    loss = objective(dict(image_tokens=tokens), {})['loss_simclr']
    u = _norm(objective.head(tokens[0][:, 0]))
    logits = (u @ u.t()) / 0.1
    negatives = logits.masked_fill(torch.eye(4, dtype=torch.bool), -math.inf)
    want = (torch.logsumexp(torch.cat([logits, negatives], dim=1), dim=1) - 1 / 0.1).mean()
    torch.testing.assert_close(loss, want)


def test_byol_objective():
    objective = MODELS.build(dict(type='BYOLObjective', projector=_head_cfg(num_layers=2, bias=False),
                                  predictor=_head_cfg(in_dim=8, num_layers=2, bias=False), teacher_view=1)).double()
    assert isinstance(objective, BYOLObjective)
    assert objective.needs_teacher and objective.teacher_modules == ('projector', )
    teacher_projector = copy.deepcopy(objective.projector).requires_grad_(False)
    with torch.no_grad():
        for p in teacher_projector.parameters():
            p.mul_(0.5)
    tokens, teacher_tokens = _tokens(2), _tokens(2, seed=7)
    context = dict(image_tokens=tokens, teacher=dict(tokens=teacher_tokens))
    out = objective(context, dict(projector=teacher_projector))
    assert set(out) == {'loss_byol'}

    preds = objective.predictor(objective.projector(torch.cat([t[:, 0] for t in tokens]))).view(2, 4, -1)
    target = copy.deepcopy(teacher_projector)(teacher_tokens[1][:, 0])
    torch.testing.assert_close(out['loss_byol'], 2.0 * byol_reference(preds, target))
    out['loss_byol'].backward()
    _assert_all_grads(objective)
    assert all(p.grad is None for p in teacher_projector.parameters())
    assert all(t.grad is None for t in teacher_tokens)
    assert all(t.grad[:, 0].abs().sum() > 0 and not t.grad[:, 1:].any() for t in tokens)


def _samples(labels):
    return [BaseDataElement(gt_label=label) for label in labels]


def test_supervised_objective_known_case():
    objective = MODELS.build(dict(type='SupervisedObjective', num_classes=3, in_dim=3, weight=2.0)).double()
    with torch.no_grad():
        objective.head.weight.copy_(2 * torch.eye(3))
        objective.head.bias.zero_()
    cls = torch.eye(3, dtype=torch.float64).requires_grad_(True)  # predicts classes 0, 1, 2
    tokens = torch.cat([cls[:, None], torch.zeros(3, 2, 3, dtype=torch.float64)], dim=1)
    # labels as an int, a 0-d tensor and a one-element tensor: the last sample is misclassified
    out = objective(dict(image_tokens=[tokens], data_samples=_samples([0, torch.tensor(1), torch.tensor([0])])), {})
    assert set(out) == {'loss_cls', 'cls_acc'} and 'loss' not in 'cls_acc'
    torch.testing.assert_close(out['cls_acc'], torch.tensor(200 / 3))
    e2 = math.exp(2)
    want = (2 * -math.log(e2 / (e2 + 2)) - math.log(1 / (e2 + 2))) / 3
    torch.testing.assert_close(out['loss_cls'], torch.tensor(2.0 * want, dtype=torch.float64))

    out['loss_cls'].backward()
    probs = torch.softmax(2 * torch.eye(3, dtype=torch.float64), dim=1)
    residual = probs - F.one_hot(torch.tensor([0, 1, 0]), 3)  # d CE / d logits, per row
    torch.testing.assert_close(objective.head.weight.grad, 2.0 * residual.t() @ cls.detach() / 3)
    torch.testing.assert_close(objective.head.bias.grad, 2.0 * residual.sum(0) / 3)
    torch.testing.assert_close(cls.grad, 2.0 * residual @ objective.head.weight.detach() / 3)


def test_supervised_objective_views_and_label_smoothing():
    objective = SupervisedObjective(num_classes=4, in_dim=IN_DIM, views=(0, 2), label_smoothing=0.1).double()
    tokens, labels = _tokens(3), [3, 0, 2, 1]
    out = objective(dict(image_tokens=tokens, data_samples=_samples(labels)), {})
    terms = []
    for view in (0, 2):
        for b, label in enumerate(labels):
            log_p = torch.log_softmax(objective.head(tokens[view][b, 0]), dim=0)
            terms.append(-(0.9 * log_p[label] + 0.1 * log_p.mean()))
    torch.testing.assert_close(out['loss_cls'], sum(terms) / len(terms))
    out['loss_cls'].backward()
    _assert_all_grads(objective)
    assert tokens[1].grad is None


# ---------------------------------------------------------------- through the real pretrainer


def test_objectives_train_through_pretrainer():
    """A-CLIP-like image-only composition: every trainable parameter gets a gradient, no teacher parameter does."""
    width = 16
    model = MODELS.build(dict(
        type='ImageTextPretrainer',
        image_encoder=dict(type='VisionTransformer', img_size=16, patch_size=8, embed_dim=width, depth=1,
                           num_heads=2),
        objectives=dict(
            simclr=dict(type='SimCLRObjective', head=_head_cfg(width), views=(0, 1), concat_views=True),
            byol=dict(type='BYOLObjective', projector=_head_cfg(width, num_layers=2, bias=False),
                      predictor=_head_cfg(8, num_layers=2, bias=False)),
            cls=dict(type='SupervisedObjective', num_classes=3, in_dim=width, views=(0, 1))),
        teacher=dict(bn_batch_stats=True)))
    model.init_weights()
    model.train()
    views = [torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(v)) for v in range(2)]
    losses = model.loss(dict(views=views), _samples([0, 1, 2, 1]))
    assert set(losses) == {'loss_simclr', 'ssl_acc', 'loss_byol', 'loss_cls', 'cls_acc'}
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    projector = model.teacher.copy_of('objectives.byol.projector')
    assert projector[1].training  # bn_batch_stats: the teacher projector normalises with batch statistics
    for name, p in model.named_parameters():
        if name.startswith('teacher.'):
            assert p.grad is None, name
        elif p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------- real 2-process gloo group


class _TwoViewHead(nn.Module):
    """SLIP's use of the SimCLR MLP: one head, called once per view inside one (DDP) forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = MLPHead(IN_DIM, 8, 4, num_layers=3).double()

    def forward(self, view_a, view_b):
        return self.head(view_a), self.head(view_b)


def _global_inputs():
    """The same global batch in every process: BN input/grad weights (W*B, C), two SimCLR views (W*B, IN_DIM)."""
    return (_randn(WORLD * BATCH, CHANNELS, seed=1) * 2 + 1, _randn(WORLD * BATCH, CHANNELS, seed=2),
            _randn(WORLD * BATCH, IN_DIM, seed=3), _randn(WORLD * BATCH, IN_DIM, seed=4))


def _bn_module():
    bn = AllReduceBatchNorm1d(CHANNELS).double()
    with torch.no_grad():
        bn.weight.copy_(_randn(CHANNELS, seed=5))
        bn.bias.copy_(_randn(CHANNELS, seed=6))
    return bn


def _full_batch_bn():
    ref = nn.BatchNorm1d(CHANNELS).double()
    ref.load_state_dict(_bn_module().state_dict())
    return ref


def _bn_run(bn, x, g):
    x = x.clone().requires_grad_(True)
    y = bn(x)
    (y * g).sum().backward()
    return dict(y=y.detach(), x_grad=x.grad, weight_grad=bn.weight.grad, bias_grad=bn.bias.grad,
                running_mean=bn.running_mean.clone(), running_var=bn.running_var.clone())


def _simclr_run(model, view_a, view_b):
    loss, _ = SimCLRLoss()(*model(view_a, view_b))
    loss.backward()
    params = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return dict(loss=loss.detach(), grads={n: p.grad.clone() for n, p in params.named_parameters()},
                buffers={n: b.clone() for n, b in params.named_buffers()})


def _worker(rank):
    x, g, view_a, view_b = _global_inputs()
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    results = dict(bn=_bn_run(_bn_module(), x[local], g[local]),
                   simclr=_simclr_run(nn.parallel.DistributedDataParallel(_TwoViewHead()), view_a[local],
                                      view_b[local]))
    return results


@pytest.fixture(scope='module')
def rank_results(tmp_path_factory):
    return run_gloo(_worker, WORLD, tmp_path_factory.mktemp('ssl_dist'))


@pytest.mark.dist
def test_dist_bn_matches_full_batch(rank_results):
    x, g, _, _ = _global_inputs()
    ref = _bn_run(_full_batch_bn(), x, g)
    for rank, res in enumerate(rank_results):
        local = slice(rank * BATCH, (rank + 1) * BATCH)
        torch.testing.assert_close(res['bn']['y'], ref['y'][local])
        torch.testing.assert_close(res['bn']['x_grad'], ref['x_grad'][local])
        torch.testing.assert_close(res['bn']['running_mean'], ref['running_mean'])
        torch.testing.assert_close(res['bn']['running_var'], ref['running_var'])
    # parameter gradients are per-rank sums; DDP would average them
    for key in ('weight_grad', 'bias_grad'):
        torch.testing.assert_close(sum(res['bn'][key] for res in rank_results), ref[key])


@pytest.mark.dist
def test_dist_simclr_with_synced_head_matches_full_batch(rank_results):
    _, _, view_a, view_b = _global_inputs()
    ref = _simclr_run(_TwoViewHead(), view_a, view_b)
    torch.testing.assert_close(sum(res['simclr']['loss'] for res in rank_results) / WORLD, ref['loss'])
    for res in rank_results:  # DDP averaged the gradients; BN statistics were global
        for name, want in ref['grads'].items():
            torch.testing.assert_close(res['simclr']['grads'][name], want, msg=name)
        for name, want in ref['buffers'].items():
            torch.testing.assert_close(res['simclr']['buffers'][name], want, msg=name)
