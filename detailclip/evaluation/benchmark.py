"""CLIP_benchmark-style JSON records of an evaluation (github.com/LAION-AI/CLIP_benchmark, its ``--output`` files).

One file per evaluated dataset, task and network::

    {"dataset": "imagenet1k", "model": "clip_vit-base-p16_openai", "pretrained": "CKPT",
     "task": "zeroshot_classification", "metrics": {"acc1": 0.68, "acc5": 0.91, "mean_per_class_recall": 0.68},
     "language": "en", "network": "student"}

Metrics are fractions in [0, 1] as CLIP_benchmark writes them (the MMEngine metrics are percentages). Retrieval uses
CLIP_benchmark's names: ``image_retrieval_recall@k`` is text -> image (T2I), ``text_retrieval_recall@k`` image -> text
(I2T). The teacher's records carry ``"network": "teacher"``, ``-teacher`` after the model name and ``_teacher`` at
the end of the file name, so tables built from the files keep the two apart.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook

from detailclip.registry import HOOKS


def _tasks(loop) -> list:
    """The (dataloader, evaluator) tasks of an evaluation loop: ``MultiValLoop``'s list, or the loop itself."""
    return list(getattr(loop, 'tasks', [loop]))


def dataset_label(metric, dataset) -> str:
    """The metric's ``dataset_name``, else the folder name of the dataset's ``data_root``, else its class name."""
    root = getattr(dataset, 'data_root', None)
    return metric.dataset_name or (osp.basename(osp.normpath(root)) if root else type(dataset).__name__)


def benchmark_records(loop, metrics: Dict[str, float], model: str, pretrained: Optional[str]) -> List[dict]:
    """CLIP_benchmark records of every metric with a ``benchmark_task`` in ``loop``, from the evaluation's
    ``metrics`` (the merged, prefixed dict the loop returned)."""
    records = []
    for task in _tasks(loop):
        for metric in task.evaluator.metrics:
            if getattr(metric, 'benchmark_task', None) is None:
                continue
            for network, values in metric.per_network(metrics).items():
                records.append(dict(dataset=dataset_label(metric, task.dataloader.dataset),
                                    model=model if network == 'student' else f'{model}-{network}',
                                    pretrained=pretrained, task=metric.benchmark_task,
                                    metrics=metric.benchmark_metrics(values), language='en', network=network))
    return records


def record_filename(record: dict) -> str:
    """``<dataset>_<task>[_<network>].json`` (the student's without a network suffix)."""
    network = '' if record['network'] == 'student' else f'_{record["network"]}'
    return f'{record["dataset"]}_{record["task"]}{network}.json'


def write_benchmark_records(records: List[dict], out_dir: str) -> List[str]:
    """Write each record as its own JSON file in ``out_dir``; returns the paths.

    Raises:
        ValueError: Two records would share a file (two tasks on one dataset): set ``dataset_name`` on the metrics.
    """
    names = [record_filename(r) for r in records]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f'CLIP_benchmark files {repeated} would be written twice: give the metrics of tasks on the '
                         'same data_root distinct dataset_name values in the evaluator config')
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, record in zip(names, records):
        paths.append(osp.join(out_dir, name))
        with open(paths[-1], 'w') as f:
            json.dump(record, f, indent=2)
    return paths


@HOOKS.register_module()
class BenchmarkJSONHook(Hook):
    """After every validation and test, write the CLIP_benchmark JSON of each zero-shot and retrieval task.

    Validation: ``<work_dir>/<out_dir>/iter_<N>/``, ``pretrained`` = ``iter_<N>``. Test (``tools/test.py``):
    ``<log_dir>/<out_dir>/``, ``pretrained`` = the loaded checkpoint. ``model`` is the config's file name.

    Args:
        out_dir (str): Sub-folder for the files.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str = 'benchmark'):
        self.out_dir = out_dir

    @master_only
    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        tag = f'iter_{runner.iter}'
        self._write(runner, runner.val_loop, metrics, osp.join(runner.work_dir, self.out_dir, tag), tag)

    @master_only
    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        out_dir = osp.join(runner.log_dir, self.out_dir)
        self._write(runner, runner.test_loop, metrics, out_dir, runner.cfg.get('load_from'))

    def _write(self, runner, loop, metrics: Optional[Dict[str, float]], out_dir: str, pretrained: Optional[str]):
        filename = getattr(runner.cfg, 'filename', None)
        model = osp.splitext(osp.basename(filename))[0] if filename else runner.experiment_name
        records = benchmark_records(loop, metrics or {}, model, pretrained)
        if records:
            paths = write_benchmark_records(records, out_dir)
            runner.logger.info(f'CLIP_benchmark JSON written: {paths}')
