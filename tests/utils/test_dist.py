"""Collectives without a process group, and a real 2-process gloo run of the CLIP loss under DDP.

The gloo run checks that DDP training with ``gather_with_grad=True`` reproduces, to 1e-6, the loss and every
parameter gradient of one process on the concatenated batch (V = 1 and V = 2 views), and that
``gather_with_grad=False`` gives SLIP's documented query-side gradient instead.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detailclip.models.losses import CLIPInfoNCELoss
from detailclip.testing import run_gloo
from detailclip.utils.dist import all_reduce_mean, gather_features, get_rank, get_world_size

WORLD, BATCH, IMG_IN, TXT_IN, EMB = 2, 3, 5, 7, 4
SCENARIOS = {  # name -> (num_views, gather_with_grad)
    'grad_v1': (1, True),
    'grad_v2': (2, True),
    'nograd_v2': (2, False),
}


class TwoTower(nn.Module):
    """Linear image and text "towers" plus a CLIP logit scale."""

    def __init__(self):
        super().__init__()
        self.image = nn.Linear(IMG_IN, EMB)
        self.text = nn.Linear(TXT_IN, EMB)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, images, texts):
        return self.image(images), self.text(texts), self.log_scale.exp()


def _model():
    torch.manual_seed(0)
    return TwoTower().double()


def _global_batch(num_views):
    """(V, W*B, IMG_IN) images and (W*B, TXT_IN) texts, the same in every process."""
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(num_views, WORLD * BATCH, IMG_IN, generator=gen, dtype=torch.float64)
    return images, torch.randn(WORLD * BATCH, TXT_IN, generator=gen, dtype=torch.float64)


def _grads(model):
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _ddp_step(rank, num_views, gather_with_grad):
    model = _model()
    ddp = nn.parallel.DistributedDataParallel(model)
    images, texts = _global_batch(num_views)
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    loss, _, _ = CLIPInfoNCELoss(gather_with_grad)(*ddp(images[:, local], texts[local]))
    loss.backward()
    return dict(loss=loss.detach(), grads=_grads(model))


def _collective_checks(rank):
    """Forward order, gradient routing and the batch-size check of the bare collectives."""
    x = torch.full((2, 3), float(rank), dtype=torch.float64, requires_grad=True)
    gathered = gather_features(x)
    # Rank q weights the gathered rows by q + 1, so every row's summed gradient is 1 + 2 = 3.
    (gathered * (rank + 1)).sum().backward()
    out = dict(gathered=gathered.detach(), grad=x.grad, nograd_requires_grad=gather_features(x, False).requires_grad,
               mean=all_reduce_mean(torch.tensor([float(rank), 2.0])), rank=get_rank(), world=get_world_size())
    try:
        gather_features(torch.zeros(rank + 1, 2))
    except RuntimeError as err:
        out['mismatch_error'] = str(err)
    return out


def _worker(rank):
    results = {name: _ddp_step(rank, *cfg) for name, cfg in SCENARIOS.items()}
    results['collectives'] = _collective_checks(rank)
    return results


@pytest.fixture(scope='module')
def rank_results(tmp_path_factory):
    return run_gloo(_worker, WORLD, tmp_path_factory.mktemp('dist'))


def _query_side_loss(image_embeds, text_embeds, scale, rank):
    """SLIP's rank-``rank`` loss: its own rows are queries, all W*B keys are constants. (V, N, e), (N, e)."""
    local = slice(rank * BATCH, (rank + 1) * BATCH)
    z_img, z_txt = F.normalize(image_embeds, dim=-1), F.normalize(text_embeds, dim=-1)
    labels = torch.arange(rank * BATCH, (rank + 1) * BATCH)
    terms = [0.5 * (F.cross_entropy(scale * z_img[v, local] @ z_txt.detach().t(), labels)
                    + F.cross_entropy(scale * z_txt[local] @ z_img[v].detach().t(), labels))
             for v in range(image_embeds.shape[0])]
    return sum(terms) / len(terms)


def _reference(num_views, query_side_only=False):
    """One process, whole batch: the full loss, or the rank-mean of SLIP's query-side losses."""
    model = _model()
    embeds = model(*_global_batch(num_views))
    if query_side_only:
        loss = sum(_query_side_loss(*embeds, rank) for rank in range(WORLD)) / WORLD
    else:
        loss, _, _ = CLIPInfoNCELoss()(*embeds)
    loss.backward()
    return loss.detach(), _grads(model)


def _assert_grads_close(got, want):
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=0, msg=name)


def test_world_size_one_is_identity():
    assert get_rank() == 0 and get_world_size() == 1
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_features(x) is x and gather_features(x, with_grad=False) is x
    torch.testing.assert_close(all_reduce_mean(x), x.detach())
    assert not all_reduce_mean(x).requires_grad


@pytest.mark.dist
def test_collectives(rank_results):
    for rank, res in enumerate(rank_results):
        col = res['collectives']
        assert (col['rank'], col['world']) == (rank, WORLD)
        torch.testing.assert_close(col['gathered'], torch.tensor([0., 0., 1., 1.]).view(4, 1).expand(4, 3).double())
        torch.testing.assert_close(col['grad'], torch.full((2, 3), 3.0, dtype=torch.float64))
        assert col['nograd_requires_grad'] is False
        torch.testing.assert_close(col['mean'], torch.tensor([0.5, 2.0]))
        assert 'same on every rank' in col['mismatch_error']


@pytest.mark.dist
@pytest.mark.parametrize('name', ['grad_v1', 'grad_v2'])
def test_ddp_gather_with_grad_matches_full_batch(rank_results, name):
    ref_loss, ref_grads = _reference(SCENARIOS[name][0])
    mean_loss = sum(res[name]['loss'] for res in rank_results) / WORLD
    torch.testing.assert_close(mean_loss, ref_loss, atol=1e-6, rtol=0)
    for res in rank_results:  # DDP has averaged the gradients: every rank holds the full-batch gradient
        _assert_grads_close(res[name]['grads'], ref_grads)


@pytest.mark.dist
def test_ddp_gather_without_grad_is_query_side(rank_results):
    num_views = SCENARIOS['nograd_v2'][0]
    slip_loss, slip_grads = _reference(num_views, query_side_only=True)
    full_loss, full_grads = _reference(num_views)
    torch.testing.assert_close(slip_loss, full_loss)  # same forward, different gradient
    for res in rank_results:
        _assert_grads_close(res['nograd_v2']['grads'], slip_grads)
    assert not torch.allclose(slip_grads['image.weight'], full_grads['image.weight'], atol=1e-4)
