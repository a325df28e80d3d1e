"""End-to-end runs through the real MMEngine Runner and the command-line tools on a tiny synthetic world."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from detailclip.datasets import CsvImageTextDataset
from detailclip.registry import DATASETS, HOOKS
from detailclip.testing import TINY_CLIP, tiny_config

N = 3  # iterations before the interruption; the full run is 2N


@DATASETS.register_module(force=True)
class RecordingCsvDataset(CsvImageTextDataset):
    """Records every sample index the pipeline decodes (test-only)."""

    loaded = []

    def prepare_data(self, idx):
        RecordingCsvDataset.loaded.append(idx)
        return super().prepare_data(idx)


@HOOKS.register_module(force=True)
class StopAtHook(Hook):
    """Stops training after ``stop_at`` iterations, as a crash would (test-only)."""

    def __init__(self, stop_at):
        self.stop_at = stop_at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 >= self.stop_at:
            runner.train_loop.stop_training = True


def _run(cfg, stop_at=None, resume=False):
    cfg.train_dataloader.dataset.type = 'RecordingCsvDataset'
    if stop_at:
        cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='StopAtHook', stop_at=stop_at)]
    cfg.resume = resume
    RecordingCsvDataset.loaded = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _logged(runner, key='loss'):
    """Iteration -> ``key`` of the training rows the run logged."""
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        rows = [json.loads(line) for line in f]
    return {r['iter']: r[key] for r in rows if 'loss' in r}


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.slow
def test_resume_continues_exactly(tiny_world, tmp_path):
    full = _run(tiny_config(tiny_world, str(tmp_path / 'full'), max_iters=2 * N))
    full_loaded = list(RecordingCsvDataset.loaded)
    cut = tiny_config(tiny_world, str(tmp_path / 'cut'), max_iters=2 * N)
    cut.default_hooks.checkpoint.interval = N
    first = _run(cut, stop_at=N)
    assert first.iter == N and osp.exists(tmp_path / 'cut' / f'iter_{N}.pth')
    second = _run(tiny_config(tiny_world, str(tmp_path / 'cut'), max_iters=2 * N), resume=True)
    resumed_loaded = list(RecordingCsvDataset.loaded)

    full_losses, first_losses, second_losses = _logged(full), _logged(first), _logged(second)
    assert {**first_losses, **second_losses} == full_losses
    assert sorted(second_losses) == list(range(N + 1, 2 * N + 1))
    ref, res = _weights(tmp_path / 'full' / f'iter_{2 * N}.pth'), _weights(tmp_path / 'cut' / f'iter_{2 * N}.pth')
    assert ref.keys() == res.keys()
    for key in ref:
        assert torch.equal(ref[key], res[key]), key
    # the resumed run decodes only the samples of iterations N+1..2N, the same ones as the uninterrupted run
    assert resumed_loaded == full_loaded[-len(resumed_loaded):]
    assert len(resumed_loaded) == N * 8


@pytest.mark.slow
def test_resume_with_a_larger_length_follows_the_new_schedule(tiny_world, tmp_path):
    """A run of N iterations resumed with 2N (what a larger max_epochs gives) has the lr of a run configured with
    2N from the start, not the first run's flat end."""
    def config(name: str, iters: int):
        cfg = tiny_config(tiny_world, str(tmp_path / name), max_iters=iters)
        cfg.param_scheduler[0].warmup_epochs = 0.1  # one warm-up iteration (12 per epoch), then the cosine
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        return cfg

    straight = _logged(_run(config('straight', 2 * N)), 'lr')
    first = _logged(_run(config('extended', N)), 'lr')
    resumed = _run(config('extended', 2 * N), resume=True)
    assert first[N] != straight[N]  # the first run's cosine ended at N
    assert _logged(resumed, 'lr') == pytest.approx({i: lr for i, lr in straight.items() if i > N}, rel=1e-6)
    [log] = glob.glob(osp.join(resumed.log_dir, '*.log'))
    assert 'the config changed the resumed schedule (end 3 -> 6)' in open(log).read()


def test_history_buffers_round_trip_through_plain_data(tmp_path):
    """Checkpointed message-hub buffers hold only weights-only-loadable types and come back equal."""
    from mmengine.logging import HistoryBuffer

    from detailclip.utils import message_hub_from_plain, message_hub_to_plain
    buffer = HistoryBuffer([1.5, 2.5], [1, 2], max_length=7)
    path = tmp_path / 'hub.pth'
    torch.save(message_hub_to_plain({'log_scalars': {'train/loss': buffer}, 'runtime_info': {'iter': 3}}), path)
    restored = message_hub_from_plain(torch.load(path, weights_only=True))['log_scalars']['train/loss']
    assert isinstance(restored, HistoryBuffer) and restored.max_length == 7
    assert restored.data[0].tolist() == [1.5, 2.5] and restored.data[1].tolist() == [1, 2]


@pytest.mark.slow
def test_train_and_test_tools(tiny_world, tmp_path, monkeypatch):
    """tools/train.py --amp (bf16 autocast on CPU) trains and validates, keeping freed host memory as the config's
    env_cfg says, and logs the validation timings under their own keys; tools/test.py evaluates the checkpoint and
    writes its metrics rounded for people."""
    from tools import test as test_tool
    from tools import train as train_tool
    cfg = tiny_config(tiny_world, str(tmp_path / 'run'), max_iters=2)
    cfg_file = tmp_path / 'tiny.py'
    cfg.dump(str(cfg_file))
    monkeypatch.chdir(tmp_path)
    calls = []  # recorded, not applied: glibc's settings are process-wide
    monkeypatch.setattr(train_tool, 'reuse_freed_memory', lambda: calls.append(1))
    train_tool.main([str(cfg_file), '--amp', '--work-dir', str(tmp_path / 'run'),
                     '--cfg-options', 'train_cfg.val_at_start=True'])
    assert cfg.env_cfg.reuse_freed_memory and calls == [1]
    [scalars] = glob.glob(str(tmp_path / 'run' / '*' / 'vis_data' / 'scalars.json'))
    rows = [json.loads(line) for line in open(scalars)]
    train_rows, val_rows = [r for r in rows if 'loss' in r], [r for r in rows if 'zero-shot/top1' in r]
    assert len(train_rows) == 2 and all({'time', 'data_time'} <= set(r) for r in train_rows)
    assert len(val_rows) == 2 and all({'val/time', 'val/data_time'} <= set(r) and 'time' not in r and
                                      'data_time' not in r for r in val_rows)
    ckpt = tmp_path / 'run' / 'iter_2.pth'
    assert ckpt.exists()
    metrics = test_tool.main([str(cfg_file), str(ckpt), '--work-dir', str(tmp_path / 'test')])
    for key in ('zero-shot/top1', 'zero-shot/top5', 'retrieval/i2t_R@1', 'retrieval/t2i_R@10'):
        assert 0 <= metrics[key] <= 100, key
    [written] = glob.glob(str(tmp_path / 'test' / '*' / 'metrics.json'))
    written = json.load(open(written))
    assert written.keys() == metrics.keys()
    assert all(written[k] == round(v, 4) for k, v in metrics.items() if isinstance(v, float))


def test_amp_flag_picks_a_wrapper_for_the_device(tmp_path):
    from tools import train as train_tool
    cfg = train_tool.build_config(train_tool.parse_args([TINY_CLIP, '--amp', '--work-dir', str(tmp_path)]))
    expected = 'AmpOptimWrapper' if torch.cuda.is_available() else 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.type == expected
    resumed = train_tool.build_config(train_tool.parse_args([TINY_CLIP, '--resume']))
    assert resumed.resume is True and resumed.load_from is None
    assert resumed.work_dir == osp.join('work_dirs', 'clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world')


@pytest.mark.slow
@pytest.mark.dist
def test_dist_train_script_runs_ddp_on_gloo(tiny_world, tmp_path):
    """tools/dist_train.sh CONFIG 2 trains with two torchrun processes (gloo on CPU) and both see the same world."""
    import os
    import subprocess
    cfg = tiny_config(tiny_world, str(tmp_path / 'ddp'), max_iters=2, batch_size=4)
    cfg_file = tmp_path / 'tiny.py'
    cfg.dump(str(cfg_file))
    env = dict(os.environ, PORT=str(29500 + os.getpid() % 1000), OMP_NUM_THREADS='1')
    script = osp.join(osp.dirname(TINY_CLIP), '..', '..', 'tools', 'dist_train.sh')
    proc = subprocess.run(['bash', script, str(cfg_file), '2', '--work-dir', str(tmp_path / 'ddp')], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Distributed training is not used' not in log
    assert (tmp_path / 'ddp' / 'iter_2.pth').exists()
