"""CLIPInfoNCELoss against a naive row-by-row reference, single process and under a faked world size."""
import math

import pytest
import torch

from detailclip.models.losses import clip_loss
from detailclip.models.losses.clip_loss import CLIPInfoNCELoss
from detailclip.registry import MODELS


def _row_ce(logits, label):
    """-log softmax(logits)[label] for one row, written out."""
    return -(logits[label] - torch.log(torch.exp(logits - logits.max()).sum()) - logits.max())


def reference_loss(images, texts, scale, weights, other_images=None, other_texts=None):
    """Naive loss for the rank that owns ``images``/``texts`` and sits after ``other_*`` (rank 1) or alone.

    images (V, B, d), texts (B, d), other_images (V, B', d), other_texts (B', d): raw embeddings.
    """
    norm = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    offset = 0 if other_texts is None else other_texts.shape[0]
    all_texts = norm(texts) if other_texts is None else torch.cat([norm(other_texts), norm(texts)])
    total = 0
    for v, w in enumerate(weights):
        all_images = norm(images[v]) if other_images is None else torch.cat([norm(other_images[v]), norm(images[v])])
        batch = texts.shape[0]
        i2t = sum(_row_ce(scale * all_texts @ norm(images[v][i]), offset + i) for i in range(batch)) / batch
        t2i = sum(_row_ce(scale * all_images @ norm(texts[i]), offset + i) for i in range(batch)) / batch
        total = total + w * 0.5 * (i2t + t2i)
    return total


def _leaves(num_views, batch, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(num_views, batch, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    texts = torch.randn(batch, dim, generator=gen, dtype=torch.float64, requires_grad=True)
    log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    return images, texts, log_scale


def _grads(loss, leaves):
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize('batch', [1, 3, 8])
@pytest.mark.parametrize('dim', [4, 16])
@pytest.mark.parametrize('num_views,view_weights', [(1, None), (1, (2.0, )), (2, None), (2, (0.3, 0.7))])
@pytest.mark.parametrize('gather_with_grad', [True, False])
def test_matches_reference(batch, dim, num_views, view_weights, gather_with_grad):
    images, texts, log_scale = _leaves(num_views, batch, dim)
    loss_fn = CLIPInfoNCELoss(gather_with_grad=gather_with_grad, view_weights=view_weights)
    loss, _, _ = loss_fn(images, texts, log_scale.exp())
    weights = view_weights or (1 / num_views, ) * num_views
    ref = reference_loss(images, texts, log_scale.exp(), weights)
    torch.testing.assert_close(loss, ref)
    for got, want in zip(_grads(loss, (images, texts, log_scale)), _grads(ref, (images, texts, log_scale))):
        torch.testing.assert_close(got, want)


def test_two_dim_image_input_is_one_view():
    images, texts, log_scale = _leaves(1, 5, 8)
    loss_fn = CLIPInfoNCELoss()
    loss_2d, acc_2d, _ = loss_fn(images[0], texts, log_scale.exp())
    loss_3d, acc_3d, _ = loss_fn(images, texts, log_scale.exp())
    torch.testing.assert_close(loss_2d, loss_3d)
    torch.testing.assert_close(acc_2d, acc_3d)


def test_clip_acc_uses_last_view():
    texts = torch.eye(3)
    first = torch.eye(3)  # every image picks its own caption
    last = torch.eye(3)[[0, 2, 1]]  # images 1 and 2 pick each other's caption
    loss, acc, _ = CLIPInfoNCELoss()(torch.stack([first, last]), texts, torch.tensor(10.0))
    torch.testing.assert_close(acc, torch.tensor(100 / 3))
    _, acc_first, _ = CLIPInfoNCELoss()(torch.stack([last, first]), texts, torch.tensor(10.0))
    torch.testing.assert_close(acc_first, torch.tensor(100.0))
    assert not acc.requires_grad and acc.dtype == torch.float32


def test_bad_shapes_and_weights_raise():
    with pytest.raises(ValueError, match='view_weights'):
        CLIPInfoNCELoss(view_weights=(1.0, ))(torch.randn(2, 3, 4), torch.randn(3, 4), torch.tensor(1.0))
    with pytest.raises(ValueError, match='expected'):
        CLIPInfoNCELoss()(torch.randn(2, 3, 4), torch.randn(2, 4), torch.tensor(1.0))


def test_registered():
    loss_fn = MODELS.build(dict(type='CLIPInfoNCELoss', gather_with_grad=False, view_weights=[0.5, 0.5]))
    assert isinstance(loss_fn, CLIPInfoNCELoss) and loss_fn.view_weights == (0.5, 0.5)


@pytest.mark.parametrize('num_views', [1, 2])
@pytest.mark.parametrize('batch', [1, 4])
def test_fake_rank_one_of_two(monkeypatch, batch, num_views):
    """As rank 1 of 2: the other rank's rows come first, labels are offset by B."""
    gen = torch.Generator().manual_seed(1)
    other_images = torch.randn(num_views, batch, 8, generator=gen, dtype=torch.float64)
    other_texts = torch.randn(batch, 8, generator=gen, dtype=torch.float64)
    norm = torch.nn.functional.normalize
    others = {3: norm(other_images, dim=-1).transpose(0, 1), 2: norm(other_texts, dim=-1)}  # keyed by ndim
    monkeypatch.setattr(clip_loss, 'get_rank', lambda: 1)
    monkeypatch.setattr(clip_loss, 'gather_features', lambda x, with_grad=True: torch.cat([others[x.dim()], x]))

    images, texts, log_scale = _leaves(num_views, batch, 8, seed=2)
    loss, _, _ = CLIPInfoNCELoss()(images, texts, log_scale.exp())
    ref = reference_loss(images, texts, log_scale.exp(), (1 / num_views, ) * num_views, other_images, other_texts)
    torch.testing.assert_close(loss, ref)
    for got, want in zip(_grads(loss, (images, texts, log_scale)), _grads(ref, (images, texts, log_scale))):
        torch.testing.assert_close(got, want)

    # Identical local pairs, orthogonal to the other rank: 100 % only if labels point at rows B..2B-1.
    local = torch.eye(8, dtype=torch.float64)[4:4 + batch]
    others[2], others[3] = torch.eye(8, dtype=torch.float64)[:batch], torch.eye(8, dtype=torch.float64)[:batch, None]
    _, acc, _ = CLIPInfoNCELoss()(local, local, torch.tensor(10.0))
    torch.testing.assert_close(acc, torch.tensor(100.0))
