"""DDP gives every method family the single-process result (MMEngine's wrapper as the Runner builds it on CPU:
gloo, two processes, ``find_unused_parameters=False``).

Each family's tiny config is shrunk further (:func:`shrink_model`, no drop path) and run in float64 on one fixed
global batch, once in this process and once split over two ranks. Random maskers are replaced by masks drawn once
for the global batch (each rank gets its rows), so both runs see the same inputs. Compared: every ``loss*`` term
(mean over ranks), every parameter gradient (SLIP: its SimCLR head only, because SLIP's CLIP loss gathers without
gradient by design, see tests/utils/test_dist.py), and every buffer after the step (iBOT/DINO centres, all-reduce
BatchNorm statistics). A second step per rank fails under DDP if any trainable parameter went unused.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from torch import nn

from detailclip.models.layers import AllReduceBatchNorm1d
from detailclip.testing import ROOT, build_method, method_batch, run_gloo

WORLD, BATCH = 2, 2  # ranks, samples per rank
FAMILIES = ['clip', 'slip', 'aclip', 'detailclip', 'ibot', 'dino', 'mae']


def _rows(batch: dict, rows: slice) -> dict:
    return {k: [v[rows] for v in value] if isinstance(value, list) else value[rows] for k, value in batch.items()}


def _fix_masks(model: nn.Module, batch: dict, rows: slice) -> None:
    """Replace a random masker by the masks it draws once for the global batch, restricted to ``rows``."""
    masker = model.masker
    if masker is None or masker.needs_teacher:  # attention masks are a function of the (equal) teacher
        return
    patch = model.image_encoder.patch_embed.patch_size
    grids = [(v.shape[-2] // patch[0], v.shape[-1] // patch[1]) for v in batch['views']]
    torch.manual_seed(2)
    masks = masker(dict(views=batch['views'], grid_sizes=grids))
    masker.forward = lambda context: [None if m is None else m[rows] for m in masks]


def _step(forward, model: nn.Module, inputs: dict) -> dict:
    """One forward/backward; the loss terms, the gradients and the buffers afterwards."""
    model.zero_grad(set_to_none=True)
    losses = forward(inputs, None, mode='loss')
    model.parse_losses(losses)[0].backward()
    return dict(losses={k: v.detach() for k, v in losses.items() if 'loss' in k},
                grads={n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                buffers={n: b.clone() for n, b in model.named_buffers()})


def _run(family: str, rank: int, world: int) -> dict:
    model, cfg = build_method(family, torch.float64)
    batch = method_batch(family, model, cfg, WORLD * BATCH, torch.float64)
    rows = slice(rank * BATCH, (rank + 1) * BATCH) if world > 1 else slice(None)
    _fix_masks(model, batch, rows)
    if world == 1:
        return _step(model, model, batch)
    ddp = MMDistributedDataParallel(model, device_ids=None, broadcast_buffers=False, find_unused_parameters=False)
    result = _step(ddp, model, _rows(batch, rows))
    _step(ddp, model, _rows(batch, rows))  # raises if a trainable parameter got no gradient in the first step
    return result


def _worker(rank: int) -> dict:
    torch.set_num_threads(1)
    return {family: _run(family, rank, WORLD) for family in FAMILIES}


@pytest.fixture(scope='module')
def rank_results(tmp_path_factory):
    return run_gloo(_worker, WORLD, tmp_path_factory.mktemp('ddp_methods'))


def _close(got: dict, want: dict, what: str) -> None:
    """Equal to float32 precision (CLIP's text LayerNorms compute in float32; all else is float64), far below the
    O(1) error of a wrong reduction or gradient scale."""
    assert got.keys() == want.keys(), what
    for key in want:
        torch.testing.assert_close(got[key].double(), want[key].double(), rtol=1e-6, atol=1e-7,
                                   msg=lambda m: f'{what} {key}: {m}')


@pytest.mark.dist
@pytest.mark.parametrize('family', FAMILIES)
def test_ddp_equals_single_process(rank_results, family):
    ref = _run(family, 0, 1)
    ranks = [res[family] for res in rank_results]
    _close({k: sum(r['losses'][k] for r in ranks) / WORLD for k in ref['losses']}, ref['losses'], 'loss')
    compared = {n: g for n, g in ref['grads'].items() if family != 'slip' or n.startswith('objectives.simclr.')}
    assert compared
    for res in ranks:
        assert res['grads'].keys() == ref['grads'].keys()  # every trainable parameter got a gradient
        _close({n: res['grads'][n] for n in compared}, compared, 'grad')
        _close(res['buffers'], ref['buffers'], 'buffer')
    if family in ('ibot', 'dino', 'detailclip'):
        assert any('center' in n for n in ref['buffers'])


@pytest.mark.parametrize('family', ['slip', 'aclip'])
def test_heads_normalise_over_all_ranks(family):
    """SLIP's and A-CLIP's head BatchNorms are the all-reduce kind (SyncBatchNorm rejects CPU tensors)."""
    model, _ = build_method(family, torch.float64)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, AllReduceBatchNorm1d) for m in norms)


def test_no_config_finds_unused_parameters():
    """DDP runs without the slow unused-parameter search everywhere (the step above proves it is not needed)."""
    for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True):
        cfg = Config.fromfile(path)
        wrapper = cfg.get('model_wrapper_cfg') or {}
        assert not cfg.get('find_unused_parameters', False) and not wrapper.get('find_unused_parameters'), path
