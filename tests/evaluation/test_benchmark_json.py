"""CLIP_benchmark-style JSON: written per validation during training and by tools/test.py on a trained checkpoint."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.runner import Runner

from detailclip.evaluation.benchmark import record_filename, write_benchmark_records
from detailclip.testing import ROOT, free_port, tiny_config
from detailclip.utils.numbers import round_floats
from tools import test as test_tool

WHOLE_TEACHER = ['image_encoder', 'image_projection', 'text_encoder', 'text_projection']
ZERO_SHOT_KEYS = {'acc1', 'acc5', 'mean_per_class_recall'}
RETRIEVAL_KEYS = {f'{d}_retrieval_recall@{k}' for d in ('image', 'text') for k in (1, 5, 10)}


def test_file_names_and_collisions(tmp_path):
    record = dict(dataset='imagenet', task='zeroshot_classification', network='student', metrics={})
    assert record_filename(record) == 'imagenet_zeroshot_classification.json'
    assert record_filename(dict(record, network='teacher')) == 'imagenet_zeroshot_classification_teacher.json'
    with pytest.raises(ValueError, match='dataset_name'):
        write_benchmark_records([record, dict(record)], str(tmp_path))
    assert not list(tmp_path.iterdir())


def _tiny_clip_with_teacher(world: str, work_dir: str):
    """The tiny CLIP with a teacher copy of both towers (never updated here: the numbers are not the point); zero-shot
    and retrieval evaluate both networks; one validation after the second (last) iteration."""
    cfg = tiny_config(world, work_dir, max_iters=2)
    cfg.model.teacher = dict(modules=WHOLE_TEACHER)
    cfg.train_cfg.val_interval = 2
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        evaluator[0].network = evaluator[1].network = 'both'
    return cfg


def _records(folder: str) -> dict:
    return {osp.basename(p): json.load(open(p)) for p in glob.glob(osp.join(folder, '*.json'))}


def _check(records: dict, metrics: dict, model: str, pretrained: str) -> None:
    """Four files (2 tasks x 2 networks) whose fractions are the MMEngine percentages / 100."""
    assert set(records) == {f'synthetic_world_{t}{s}.json' for t in ('zeroshot_classification', 'zeroshot_retrieval')
                            for s in ('', '_teacher')}
    for name, rec in records.items():
        teacher = rec['network'] == 'teacher'
        assert rec['model'] == model + ('-teacher' if teacher else '') and rec['pretrained'] == pretrained
        assert rec['dataset'] == 'synthetic_world' and rec['language'] == 'en'
        head = 'teacher/' if teacher else ''
        if rec['task'] == 'zeroshot_classification':
            assert set(rec['metrics']) == ZERO_SHOT_KEYS
            assert rec['metrics']['acc1'] == pytest.approx(metrics[f'zero-shot/{head}top1'] / 100)
            assert rec['metrics']['mean_per_class_recall'] == pytest.approx(
                metrics[f'zero-shot/{head}mean_per_class_recall'] / 100)
        else:
            assert set(rec['metrics']) == RETRIEVAL_KEYS
            t2i = metrics[f'retrieval/{head}t2i_R@5']
            assert rec['metrics']['image_retrieval_recall@5'] == pytest.approx(t2i / 100)
            assert rec['metrics']['text_retrieval_recall@1'] == pytest.approx(metrics[f'retrieval/{head}i2t_R@1'] / 100)
        assert all(0. <= v <= 1. for v in rec['metrics'].values())


@pytest.fixture(scope='module')
def trained(tiny_world, tmp_path_factory):
    """The tiny CLIP trained two iterations (validated after the second), its config file and checkpoint."""
    root = tmp_path_factory.mktemp('bench')
    cfg = _tiny_clip_with_teacher(tiny_world, str(root / 'train'))
    name = osp.splitext(osp.basename(cfg.filename))[0]
    runner = Runner.from_cfg(cfg)
    runner.train()
    config = str(root / f'{name}.py')
    cfg.dump(config)
    return dict(root=root, name=name, config=config, ckpt=str(root / 'train' / 'iter_2.pth'),
                val_top1=runner.message_hub.log_scalars['val/zero-shot/top1'].current())


@pytest.fixture(scope='module')
def tested(trained):
    """tools/test.py on the checkpoint, one process: its returned metrics and log directory."""
    work_dir = str(trained['root'] / 'test')
    metrics = test_tool.main([trained['config'], trained['ckpt'], '--work-dir', work_dir])
    return metrics, osp.dirname(glob.glob(osp.join(work_dir, '*', 'metrics.json'))[0])


@pytest.mark.slow
def test_training_validation_writes_benchmark_json(trained):
    records = _records(str(trained['root'] / 'train' / 'benchmark' / 'iter_2'))
    assert len(records) == 4 and all(r['pretrained'] == 'iter_2' for r in records.values())
    assert records['synthetic_world_zeroshot_classification.json']['metrics']['acc1'] == pytest.approx(
        trained['val_top1'] / 100)


@pytest.mark.slow
def test_test_tool_writes_metrics_and_benchmark_json(trained, tested):
    metrics, log_dir = tested
    assert json.load(open(osp.join(log_dir, 'metrics.json'))) == round_floats(metrics)  # written for people
    _check(_records(osp.join(log_dir, 'benchmark')), metrics, trained['name'], trained['ckpt'])


@pytest.mark.slow
@pytest.mark.dist
def test_two_process_test_equals_one_process(trained, tested, tmp_path):
    """tools/test.py under torchrun with 2 gloo ranks: every evaluator runs sharded on both ranks and the gathered
    numbers are the single process's, exactly (the odd-sized splits get padded by the sampler)."""
    work_dir = tmp_path / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
               '--master_port', str(free_port()), osp.join(ROOT, 'tools', 'test.py'), trained['config'],
               trained['ckpt'], '--launcher', 'pytorch', '--work-dir', str(work_dir)]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Distributed training is not used' not in proc.stdout + proc.stderr
    ddp = json.load(open(glob.glob(str(work_dir / '*' / 'metrics.json'))[0]))
    assert ddp == round_floats(tested[0])
