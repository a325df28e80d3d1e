"""Faults: kill -9 mid-iteration and mid-checkpoint-write, then --resume; NaN losses; untrusted checkpoint files.

The crash runs go through ``tools/train.py`` in subprocesses that kill themselves at a chosen point with
:class:`~detailclip.engine.hooks.FaultInjectionHook` (no timing involved). The tiny DetailCLIP config covers the EMA
teacher, the iBOT centres, the teacher-temperature schedule, the attention masker and (with drop path on) torch's RNG.
"""
import glob
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from detailclip.engine.hooks import FiniteLossHook, NonFiniteLossError
from detailclip.testing import ROOT, run_gloo, shrink_model, tiny_config
from detailclip.utils.checkpoint import arm_write_fault, atomic_write, load_from_local

DETAILCLIP = osp.join(ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
ITERS, EVERY = 6, 2  # iterations of every run, checkpoint interval
CUT_BYTES = 4096  # bytes of iter_4.pth's temporary file written before the kill


def _config(world: str, work_dir: str, config: str = DETAILCLIP, **fault):
    """The tiny config with checkpoints every EVERY iterations (only the latest kept), no validation, and an
    optional FaultInjectionHook."""
    cfg = tiny_config(world, work_dir, config, max_iters=ITERS)
    cfg.model = shrink_model(cfg.model)  # heads and decoder at the test towers' width
    if 'mae' in cfg.model.objectives:
        cfg.model.objectives.mae.patch_size = cfg.model.image_encoder.patch_size
    cfg.model.image_encoder.drop_path_rate = 0.1  # random draws in the forward pass
    cfg.default_hooks.checkpoint.update(interval=EVERY, max_keep_ckpts=1)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    if fault:
        cfg.custom_hooks = [dict(type='FaultInjectionHook', **fault)]
    return cfg


def _train(cfg, cfg_file: str, work_dir: str, resume: bool = False) -> int:
    """Run tools/train.py on ``cfg`` in a subprocess; returns its exit status (-9 when it killed itself). The config
    goes as JSON: MMEngine's ``.py`` dump sorts dict keys, and DetailCLIP's objectives must stay in config order."""
    cfg.dump(cfg_file)
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg_file, '--work-dir', work_dir]
    env = dict(os.environ, WANDB_MODE='offline', OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd + (['--resume'] if resume else []), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode not in (0, -9):
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc.returncode


def _logged_losses(work_dir: str) -> list:
    """Per run (oldest first), {iteration: {loss key: value}} from its vis_data/scalars.json."""
    runs = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows = [json.loads(line) for line in f]
        runs.append({r['iter']: {k: v for k, v in r.items() if 'loss' in k} for r in rows if 'loss' in r})
    return runs


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def _state(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.slow
def test_kill_anywhere_then_resume_continues_exactly(tiny_world, tmp_path):
    full_dir, cut_dir = str(tmp_path / 'full'), str(tmp_path / 'cut')
    assert _train(_config(tiny_world, full_dir), str(tmp_path / 'full.json'), full_dir) == 0

    # 1. killed while writing iter_4.pth: iter_2.pth (the only one kept) and the pointer to it are intact
    cut = _config(tiny_world, cut_dir, kill_in_write=f'iter_{2 * EVERY}.pth', after_bytes=CUT_BYTES)
    assert _train(cut, str(tmp_path / 'cut_write.json'), cut_dir) == -9
    assert not osp.exists(osp.join(cut_dir, 'iter_4.pth'))
    assert _last_checkpoint(cut_dir).endswith('iter_2.pth')
    assert any(k.startswith('teacher.') for k in _state(osp.join(cut_dir, 'iter_2.pth')))  # loads, whole
    partial = glob.glob(osp.join(cut_dir, '.iter_4.pth.*.partial'))
    assert len(partial) == 1 and osp.getsize(partial[0]) == CUT_BYTES

    # 2. resumed from iter_2, killed inside iteration 5 (after its forward pass), after saving iter_4.pth
    resumed = _config(tiny_world, cut_dir, kill_at_iter=5)
    assert _train(resumed, str(tmp_path / 'cut_iter.json'), cut_dir, resume=True) == -9
    assert _last_checkpoint(cut_dir).endswith('iter_4.pth') and not osp.exists(osp.join(cut_dir, 'iter_2.pth'))
    assert not glob.glob(osp.join(cut_dir, '.*.partial'))  # the killed write's leftover is gone

    # 3. resumed from iter_4 to the end
    assert _train(_config(tiny_world, cut_dir), str(tmp_path / 'cut_end.json'), cut_dir, resume=True) == 0

    (full, ), runs = _logged_losses(full_dir), _logged_losses(cut_dir)
    assert sorted(full) == list(range(1, ITERS + 1)) and len(runs) == 3
    assert sorted(runs[1]) == [3, 4] and sorted(runs[2]) == [5, 6]
    for run in runs:  # every logged term of every iteration, bit for bit
        for it, terms in run.items():
            assert terms == full[it], it
    ref, res = _state(osp.join(full_dir, 'iter_6.pth')), _state(osp.join(cut_dir, 'iter_6.pth'))
    assert ref.keys() == res.keys() and any('center' in k for k in ref)
    for key in ref:
        assert torch.equal(ref[key], res[key]), key


def test_nan_loss_stops_before_checkpointing(tiny_world, tmp_path):
    cfg = _config(tiny_world, str(tmp_path), config=osp.join(ROOT, 'configs/clip/'
                                                             'clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py'),
                  nan_at_iter=3, nan_term='loss_clip')
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=2)
    with pytest.raises(NonFiniteLossError) as info:
        Runner.from_cfg(cfg).train()
    message = str(info.value)
    assert 'non-finite loss at iteration 3: loss_clip=nan' in message, message
    # iteration 3 started from iter_2.pth's weights: only iter_1.pth is known to train on with finite values
    assert (f'{tmp_path}/iter_2.pth holds the weights that gave this value; {tmp_path}/iter_1.pth is the last '
            'checkpoint whose weights trained on with finite values, and last_checkpoint now points to it') in message
    assert '--resume' in message
    assert sorted(glob.glob('*.pth', root_dir=tmp_path)) == ['iter_1.pth', 'iter_2.pth']  # no iter_3.pth
    assert _last_checkpoint(str(tmp_path)).endswith('iter_1.pth')


def _divergence_config(world: str, work_dir: str):
    """The tiny CLIP run at lr=1e30 (AdamW, warm-up from 1e-6): its second update blows the weights up to ~1e29,
    which are finite but give a NaN loss in the next iteration."""
    cfg = _config(world, work_dir, config=osp.join(ROOT, 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic'
                                                         '-world.py'))
    cfg.optim_wrapper.optimizer.lr = 1e30
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=3)
    return cfg


def _loss_on_a_real_batch(runner, checkpoint: str) -> dict:
    runner.load_checkpoint(checkpoint)
    batch = next(iter(runner.train_dataloader))
    with torch.no_grad():
        return runner.model(**runner.model.data_preprocessor(batch, True), mode='loss')


def _finite(losses: dict) -> bool:
    return all(bool(v.isfinite().all()) for k, v in losses.items() if 'loss' in k)


def test_divergence_stops_before_the_update_and_names_a_checkpoint_with_a_finite_loss(tiny_world, tmp_path):
    runner = Runner.from_cfg(_divergence_config(tiny_world, str(tmp_path)))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    failed = int(re.search(r'at iteration (\d+)', message).group(1))
    named = re.search(r'(\S+) is the last checkpoint whose weights trained on with finite values', message).group(1)
    started_from = str(tmp_path / f'iter_{failed - 1}.pth')
    assert f'{started_from} holds the weights that gave this value' in message, message
    assert _last_checkpoint(str(tmp_path)) == named
    # the failing step was not applied: the model still holds the weights the iteration started from
    for key, value in _state(started_from).items():
        assert torch.equal(runner.model.state_dict()[key], value), key
    assert _finite(_loss_on_a_real_batch(runner, named))
    assert not _finite(_loss_on_a_real_batch(runner, started_from))  # what the message named before the fix


class _TinyLossModel(torch.nn.Module):
    """``forward(x) -> {'loss_sum': sum(w x), 'loss_const': const}``: a model whose loss dict the hook records."""

    def __init__(self, const: float = 0.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4))
        self.const = const

    def forward(self, x: torch.Tensor) -> dict:
        return dict(loss_sum=(self.weight * x).sum(), loss_const=torch.tensor(self.const), acc=torch.tensor(1.0))


def _hooked(model, tmp_path, name: str):
    """A FiniteLossHook installed (before_train) on ``model`` with an SGD OptimWrapper; returns (hook, runner)."""
    runner = SimpleNamespace(iter=4, model=model, optim_wrapper=OptimWrapper(torch.optim.SGD(model.parameters(), 0.1)),
                             message_hub=MessageHub.get_instance(name), work_dir=str(tmp_path))
    hook = FiniteLossHook()
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    return hook, runner


def test_checks_run_before_the_update_and_a_grad_scaler_overflow_is_a_skipped_step(tmp_path):
    # a NaN loss term without gradient: the gradients are finite, the step is still refused
    model = _TinyLossModel(const=float('nan'))
    hook, runner = _hooked(model, tmp_path, 'finite_nan_term')
    losses = model(torch.ones(4))
    with pytest.raises(NonFiniteLossError, match=r'non-finite loss at iteration 5: loss_const=nan \(finite: '):
        runner.optim_wrapper.update_params(losses['loss_sum'] + losses['loss_const'])
    assert torch.equal(model.weight, torch.ones(4))

    # an infinite gradient from a finite loss: refused without a scaler ...
    model = _TinyLossModel()
    hook, runner = _hooked(model, tmp_path, 'finite_inf_grad')
    with pytest.raises(NonFiniteLossError, match='non-finite gradient norm at iteration 5: grad_norm=inf'):
        runner.optim_wrapper.update_params(model(torch.tensor([3e38, -3e38, 0, 0]))['loss_sum'] * 2)  # loss 0
    assert torch.equal(model.weight, torch.ones(4))

    # ... and a normal skipped step with one: the scaler never calls the optimizer's step, the scale backs off
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**100)
    hook.before_train_iter(runner, 0)
    runner.optim_wrapper.zero_grad()
    scaler.scale(model(torch.full((4, ), 1e9))['loss_sum']).backward()  # 1e9 * 2**100 overflows: grads are inf
    scaler.step(runner.optim_wrapper.optimizer)
    scaler.update()
    hook.after_train_iter(runner, 0)
    assert scaler.get_scale() == 2.0**99 and torch.equal(model.weight, torch.ones(4))


def _finite_check_on_rank(rank: int) -> str:
    """FiniteLossHook on an iteration whose loss is NaN on rank 1 only: what each rank does."""
    model = _TinyLossModel(const=float('nan') if rank == 1 else 1.0)
    hook, runner = _hooked(model, '.', 'finite_loss_gloo')
    model(torch.ones(4))
    try:
        hook.after_train_iter(runner, 0)  # an iteration without an optimizer step: checked after it
    except NonFiniteLossError as err:
        return str(err)
    return 'continued'


@pytest.mark.dist
def test_nan_on_one_rank_stops_every_rank(tmp_path):
    rank0, rank1 = run_gloo(_finite_check_on_rank, 2, tmp_path)
    assert rank1.startswith('non-finite loss at iteration 5: loss_const=nan (finite: loss_sum=4)'), rank1
    assert rank0.startswith('non-finite loss or gradient norm at iteration 5: on another rank (finite: loss_sum=4, '
                            'loss_const=1)'), rank0


class _Payload:
    """Pickles as a call of ``os.mkdir(path)``: what a crafted checkpoint could run when unpickled unsafely."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


def test_resume_refuses_a_pickle_with_an_arbitrary_global(tiny_world, tmp_path):
    marker = tmp_path / 'payload_ran'
    evil = tmp_path / 'iter_1.pth'
    torch.save({'meta': {'iter': 1, 'epoch': 0}, 'state_dict': {}, 'extra': _Payload(str(marker))}, evil)
    assert CheckpointLoader._get_checkpoint_loader(str(evil)) is load_from_local
    cfg = _config(tiny_world, str(tmp_path / 'run'))
    cfg.resume, cfg.load_from = True, str(evil)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed') as info:
        Runner.from_cfg(cfg).train()
    assert 'mkdir' in str(info.value)
    assert not marker.exists()


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / 'iter_2.pth'
    atomic_write(str(path), b'old contents')
    arm_write_fault('iter_2.pth', 3, action='raise')
    with pytest.raises(OSError, match='injected fault'):
        atomic_write(str(path), b'new contents')
    assert path.read_bytes() == b'old contents' and os.listdir(tmp_path) == ['iter_2.pth']
    atomic_write(str(path), b'new contents')  # a fault fires once
    assert path.read_bytes() == b'new contents'
