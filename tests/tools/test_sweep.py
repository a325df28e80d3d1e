"""tools/sweep.py: W&B sweep files expanded locally (grid, seeded random), checked before anything runs, and a real
two-point sweep of a tiny DetailCLIP through tools/train.py, resumed, then tabulated by ablation_table.py."""
import glob
import os.path as osp

import pytest
import yaml

from detailclip.testing import ROOT, shrink_model, tiny_config
from tools import sweep
from tools.analysis import ablation_table

SWEEPS = sorted(glob.glob(osp.join(ROOT, 'configs', 'sweeps', '*.yaml')))
DETAILCLIP = osp.join(ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
COMMAND = ['${env}', '${interpreter}', '${program}', DETAILCLIP, '--cfg-options', '${args_no_hyphens}']


def _write(tmp_path, parameters: dict, method: str = 'grid', **keys) -> str:
    path = tmp_path / 'sweep.yaml'
    path.write_text(yaml.safe_dump(dict(program='tools/train.py', method=method, parameters=parameters,
                                        command=COMMAND, **keys), sort_keys=False))
    return str(path)


@pytest.mark.parametrize('path', SWEEPS, ids=osp.basename)
def test_shipped_sweeps_check(path, capsys):
    assert sweep.main([path, '--dry-run', '--work-root', '/nonexistent']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(' tools/train.py configs/' in line and ' --work-dir /nonexistent/' in line for line in lines)


def test_grid_expansion(tmp_path):
    spec = sweep.load_sweep(_write(tmp_path, {'model.masker.keep': {'values': ['high', 'low']},
                                              'model.masker.block_size': {'values': [1, 2]},
                                              'model.masker.ratio_semantics': {'value': 'remove'}}))
    points = sweep.expand(spec)
    assert [(p['model.masker.keep'], p['model.masker.block_size']) for p in points] == [
        ('high', 1), ('high', 2), ('low', 1), ('low', 2)]
    assert all(p['model.masker.ratio_semantics'] == 'remove' for p in points)
    assert sweep.expand(spec, max_runs=3) == points[:3]
    varying = ['model.masker.keep', 'model.masker.block_size']
    assert sweep.point_name(points[1], varying) == 'masker.keep=high,masker.block_size=2'
    command = sweep.train_command(spec, points[1], '/w/x', ['--amp'])
    assert command[1:] == ['tools/train.py', DETAILCLIP, '--cfg-options', 'model.masker.keep=high',
                           'model.masker.block_size=2', 'model.masker.ratio_semantics=remove', '--work-dir', '/w/x',
                           '--amp']


def test_random_expansion(tmp_path):
    parameters = {'model.objectives.mae.weight': {'min': 0.0, 'max': 2.0},
                  'model.masker.block_size': {'min': 1, 'max': 4},
                  'optim_wrapper.optimizer.lr': {'distribution': 'log_uniform_values', 'min': 1e-4, 'max': 1e-2},
                  'model.objectives.ibot.cls_weight': {'values': [0.0, 1.0], 'probabilities': [0.2, 0.8]}}
    spec = sweep.load_sweep(_write(tmp_path, parameters, method='random', run_cap=6))
    points = sweep.expand(spec, seed=0)
    assert len(points) == 6 and points == sweep.expand(spec, seed=0) != sweep.expand(spec, seed=1)
    for p in points:
        assert 0 <= p['model.objectives.mae.weight'] <= 2 and p['model.masker.block_size'] in (1, 2, 3, 4)
        assert 1e-4 <= p['optim_wrapper.optimizer.lr'] <= 1e-2 and p['model.objectives.ibot.cls_weight'] in (0, 1)
        assert p['model.objectives.mae.weight'] == float(f'{p["model.objectives.mae.weight"]:.4g}')
    assert len(sweep.expand(spec, max_runs=2)) == 2
    # repeats are dropped: two values cannot make more than two points
    few = sweep.load_sweep(_write(tmp_path, {'model.masker.keep': {'values': ['high', 'low']}}, method='random'))
    assert sorted(p['model.masker.keep'] for p in sweep.expand(few, max_runs=20)) == ['high', 'low']
    with pytest.raises(sweep.SweepError, match='run_cap'):
        sweep.expand(few)


@pytest.mark.parametrize('change, message', [
    (dict(methd='grid'), r"unknown sweep key\(s\) \['methd'\]"),
    (dict(method='bayes'), 'runs only on the W&B server'),
    (dict(parameters={'model.masker.ratio': [0.25, 0.5]}), 'is not a parameter spec'),
    (dict(parameters={'model.masker.ratio': {'min': 0.2, 'max': 0.6}}), 'grid sweep needs values'),
    (dict(parameters={'model.masker.ratio': {'values': [0.5], 'value': 0.5}}), 'exactly one of'),
    (dict(command=['${env}', '${interpreter}', '${program}', DETAILCLIP, '${args}']), 'must be a list that runs'),
])
def test_bad_sweep_files(tmp_path, change, message):
    path = _write(tmp_path, {'model.masker.ratio': {'values': [0.25]}})
    spec = {**yaml.safe_load(open(path)), **change}
    if 'methd' in change:
        spec.pop('method')
    (tmp_path / 'sweep.yaml').write_text(yaml.safe_dump(spec))
    with pytest.raises(sweep.SweepError, match=message):
        sweep.load_sweep(path)


def test_bad_yaml_and_unknown_config_keys(tmp_path, capsys):
    (tmp_path / 'bad.yaml').write_text('parameters: [1\n')
    with pytest.raises(SystemExit, match='not valid YAML'):
        sweep.main([str(tmp_path / 'bad.yaml'), '--dry-run'])
    typo = _write(tmp_path, {'model.maskr.ratio': {'values': [0.25]}})
    with pytest.raises(SystemExit, match="config has no 'model.maskr'; did you mean 'model.masker'"):
        sweep.main([typo, '--dry-run'])
    wrong_argument = _write(tmp_path, {'model.masker.ration': {'values': [0.25]}})
    with pytest.raises(SystemExit, match="AttentionMask has no argument 'ration'; did you mean 'ratio'"):
        sweep.main([wrong_argument, '--dry-run'])
    assert capsys.readouterr().out == ''  # nothing ran


def _tiny_detailclip(world: str, path: str) -> str:
    """The tiny DetailCLIP shrunk to the test towers on the tiny world, 2 iterations, validated at the end. JSON:
    MMEngine's .py dump sorts dict keys, and the objectives must stay in config order."""
    cfg = tiny_config(world, '', DETAILCLIP, max_iters=2)
    cfg.model = shrink_model(cfg.model)
    cfg.model.objectives.mae.patch_size = cfg.model.image_encoder.patch_size
    cfg.dump(path)
    return path


@pytest.mark.slow
def test_two_point_sweep_then_table(tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('WANDB_MODE', 'offline')
    config = _tiny_detailclip(tiny_world, str(tmp_path / 'detailclip_tiny.json'))
    path = tmp_path / 'ratio.yaml'
    path.write_text(yaml.safe_dump(dict(
        program='tools/train.py', method='grid', command=[*COMMAND[:3], config, *COMMAND[4:]],
        parameters={'model.masker.ratio': {'values': [0.25, 0.5]},
                    'model.masker.ratio_semantics': {'value': 'remove'}})))
    root = tmp_path / 'sweep'
    argv = [str(path), '--work-root', str(root), '--', '--cfg-options', 'default_hooks.logger.interval=1']
    assert sweep.main(argv) == 0
    out = capsys.readouterr().out
    assert '[1/2] masker.ratio=0.25: done in' in out and '[2/2] masker.ratio=0.5: done in' in out
    assert sweep.main(argv) == 0  # resumed: both points had finished
    assert capsys.readouterr().out.count('finished before, skipped') == 2

    assert f'ablation_table.py {root}/*' in out  # the command it prints, run twice: the second run's glob
    table = ablation_table.main(sorted(glob.glob(str(root / '*'))))  # also matches the table files of the first
    assert ablation_table.main(sorted(glob.glob(str(root / '*')))) == table
    assert [(r['run'], r['method'], r['masker'], r['mask_ratio']) for r in table] == [
        ('masker.ratio=0.25', 'detailclip', 'AttentionMask', 0.25),
        ('masker.ratio=0.5', 'detailclip', 'AttentionMask', 0.5)]
    for row in table:
        assert row['iters'] == 2 and row['images/s'] > 0 and 0 <= row['zero-shot/top1'] <= 100
        assert 'mae=1' in row['loss_weights'] and row['seed'] == 0
    text = (root / 'ablation.md').read_text()
    assert '| masker.ratio=0.25 | detailclip | AttentionMask | 0.25 |' in text
    assert '| masker.ratio=0.5 | detailclip | AttentionMask | 0.5 |' in text
