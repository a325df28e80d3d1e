"""tools/analysis/benchmark.py: one real step of a tiny DetailCLIP in-process, its record and its tables."""
import json

import pytest
import torch
from mmengine.config import Config

from detailclip.testing import ROOT, shrink_model
from tools.analysis import benchmark

CONFIG = f'{ROOT}/configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    """A leaf config over the tiny DetailCLIP with the model shrunk further (a leaf, not ``Config.dump``, which
    sorts the objectives and so breaks their order)."""
    model = shrink_model(Config.fromfile(CONFIG).model.to_dict())
    path = tmp_path_factory.mktemp('cfg') / 'detailclip_tiny.py'
    path.write_text(f'_base_ = [{CONFIG!r}]\nmodel = {model!r}\n')
    return str(path)


def _run(config, out_dir, *flags):
    """One in-process run; ``--malloc system`` keeps glibc's settings of the test process as they are."""
    out = out_dir / 'record.json'
    records = benchmark.main([config, '--batch', '2', '--steps', '1', '--warmup', '1', '--device', 'cpu',
                              '--malloc', 'system', '--json', str(out), *flags])
    assert json.loads(out.read_text()) == records[0]
    return records[0]


@pytest.fixture(scope='module')
def optimized(tiny_config, tmp_path_factory):
    return _run(tiny_config, tmp_path_factory.mktemp('optimized'))


@pytest.mark.parametrize('flags', [(), ('--naive', '--amp')])
def test_one_step_record(tiny_config, optimized, tmp_path, capsys, flags):
    record = _run(tiny_config, tmp_path, *flags) if flags else optimized
    assert record['views'] == 2 and record['img_size'] == 64 and record['naive'] == ('--naive' in flags)
    assert record['malloc'] == 'system'
    assert record['step_s'] > 0 and record['images_per_s'] == pytest.approx(2 / record['step_s'])
    assert record['flops'] > 0 and 0 < record['utilisation'] and record['peak_flops'] > 0
    assert record['peak_bytes'] > record['base_bytes'] > record['model_bytes'] > 0
    assert 2 * record['grad_bytes'] <= record['optim_bytes'] < 2.01 * record['grad_bytes']  # AdamW: 2 moments
    for stage in ('teacher', 'masker', 'student encoder', 'text encoder', 'decoder', 'heads', 'losses', 'backward',
                  'optimizer', 'EMA'):
        assert record['breakdown'][stage] > 0, stage
    assert 'unaccounted' in record['breakdown']
    if flags:
        assert '| variant | s/step |' in capsys.readouterr().out


def test_only_the_breakdown_steps_run_wrapped(tiny_config, tmp_path, monkeypatch):
    """The timed steps run with no stage call wrapped (on a GPU each wrapped call would synchronise, and compiled
    regions would break around it); the breakdown's steps come after them."""
    wrapped = []
    step = benchmark.train_step

    def spy(model, wrapper, data):
        wrapped.append(hasattr(model.forward, '__wrapped__'))
        step(model, wrapper, data)

    monkeypatch.setattr(benchmark, 'train_step', spy)
    record = _run(tiny_config, tmp_path, '--steps', '2', '--breakdown-steps', '3')
    assert wrapped == [False] * 3 + [True] * 3  # the warm-up step, 2 timed steps, 3 breakdown steps
    assert len(record['step_s_all']) == 2 and record['breakdown']['teacher'] > 0


def test_short_captions_cost_less_unless_naive(tiny_config, optimized, tmp_path):
    """With captions of 4 tokens the text encoder runs on 4 columns, not the context length; the reference's way runs
    the padding too (the same FLOPs as full-length captions)."""
    short = _run(tiny_config, tmp_path, '--caption-length', '4', '--no-breakdown')
    assert short['caption_length'] == 4 and short['flops'] < optimized['flops']
    naive = [_run(tiny_config, tmp_path, '--naive', '--no-breakdown', *flags)['flops']
             for flags in ((), ('--caption-length', '4'))]
    assert naive[0] == naive[1]
    with pytest.raises(ValueError, match='caption-length must lie in'):
        _run(tiny_config, tmp_path, '--caption-length', '1')


def test_report_tabulates_saved_records(optimized, tmp_path, capsys):
    record = optimized
    paths = []
    for label, scale in (('a', 1.0), ('b', 2.0)):
        path = tmp_path / f'{label}.json'
        path.write_text(json.dumps(dict(record, label=label, step_s=record['step_s'] * scale,
                                        images_per_s=record['images_per_s'] / scale)))
        paths.append(str(path))
    capsys.readouterr()
    benchmark.main(['--report', *paths])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith('| b |') and '| 0.50x |' in line for line in lines)
    assert any(line.startswith('| EMA |') for line in lines)


def test_variant_names():
    assert benchmark.variant_flags('naive-bf16-b16-s160') == ['--naive', '--amp', '--batch', '16', '--img-size',
                                                              '160']
    assert benchmark.variant_flags('optimized-fp32-compile-ckpt') == ['--compile', '--grad-checkpointing']
    assert benchmark.variant_flags('bf16-compile-mem0.8') == ['--amp', '--compile', '--memory-budget', '0.8']
    assert benchmark.variant_flags('naive-reuse') == ['--naive', '--malloc', 'reuse']
    assert benchmark.variant_flags('bf16-c20') == ['--amp', '--caption-length', '20']
    assert benchmark.variant_flags('optimized-sysmalloc') == ['--malloc', 'system']
    with pytest.raises(ValueError, match='unknown variant token'):
        benchmark.variant_flags('fast')


def test_malloc_defaults_follow_the_config_and_the_reference():
    """Optimized runs reuse freed memory as tools/train.py does for the config; naive runs keep glibc's default."""
    cfg = Config.fromfile(CONFIG)
    assert cfg.env_cfg.reuse_freed_memory

    def setting(*argv):
        return benchmark.malloc_setting(benchmark.parse_args([CONFIG, *argv]), cfg)

    assert setting() == 'reuse' and setting('--naive') == 'system'
    assert setting('--malloc', 'system') == 'system' and setting('--naive', '--malloc', 'reuse') == 'reuse'
    cfg.env_cfg.reuse_freed_memory = False
    assert setting() == 'system'


def test_rounds_merge_into_one_record_per_variant(optimized, capsys):
    """Rounds of a variant: the median over every step, per-round speed-ups against the first variant's same round."""
    rounds = [dict(optimized, step_s=s, step_s_all=[s, s + 0.2], activation_bytes=a)
              for s, a in ((1.0, 10), (2.0, 30), (1.5, 20))]
    merged = benchmark.merge_rounds(rounds)
    assert merged['step_s'] == pytest.approx(1.6) and merged['round_step_s'] == [1.0, 2.0, 1.5]
    assert merged['images_per_s'] == pytest.approx(merged['batch'] / 1.6) and merged['activation_bytes'] == 20
    faster = benchmark.merge_rounds([dict(r, step_s=r['step_s'] / 2, label='fast') for r in rounds])
    assert benchmark.round_speedups(faster, merged) == [2.0, 2.0, 2.0]
    assert '| fast |' in benchmark.table([merged, faster]) and '| 2.00 2.00 2.00 |' in benchmark.table([merged, faster])


def test_op_timer_splits_matmul_work_from_other_ops():
    x = torch.randn(64, 32, requires_grad=True)
    timer = benchmark.OpTimer('cpu')
    with timer:
        (x @ torch.randn(32, 16)).relu().sum().backward()
        x.detach().sum().item()  # one read back to the host
    summary = timer.summary(step_s=1.0, top=2)
    assert summary['host_reads'] == 1
    assert timer.flop_ops == {'mm'} and timer.calls['mm'] == 2  # forward, and the gradient of x
    assert summary['flop_ops_s'] == pytest.approx(timer.seconds['mm'])
    assert summary['other_ops_s'] == pytest.approx(sum(timer.seconds.values()) - timer.seconds['mm'])
    assert summary['flop_ops_s'] > 0 and summary['other_ops_s'] > 0
    names = [name for name, _, _ in summary['top']]
    assert len(names) == 2 and 'mm' not in names and set(names) <= set(timer.seconds)
    assert summary['top'][0][1] >= summary['top'][1][1] and summary['top'][0][2] == timer.calls[names[0]]


def test_ops_flag_times_one_more_step_op_by_op(tiny_config, tmp_path, capsys):
    record = _run(tiny_config, tmp_path, '--ops', '--no-breakdown')
    ops = record['ops']
    assert 0 < ops['flop_ops_s'] and 0 < ops['other_ops_s'] and ops['flop_ops_s'] + ops['other_ops_s'] < ops['step_s']
    assert {'addmm', 'mm', 'bmm'}.isdisjoint(name for name, _, _ in ops['top'])
    out = capsys.readouterr().out
    assert '| matmuls, convolutions, attention (FLOP-counted ops) |' in out and '| slowest other ops |' in out
    assert ops['host_reads'] == 0 and '| host reads (a sync each on a GPU) | 0 |' in out
    merged = benchmark.merge_rounds([dict(record, ops=dict(ops, other_ops_s=s)) for s in (1.0, 3.0, 2.0)])
    assert merged['ops']['other_ops_s'] == 2.0 and merged['ops']['top'] == ops['top']
