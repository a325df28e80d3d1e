"""What every evaluator shares: the networks it evaluates, and results gathered exactly from every rank."""
import sys
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from detailclip.models.pretrainer import NETWORKS, network_field

__all__ = ['ClassificationMetric', 'NetworkMetric', 'network_field']


class NetworkMetric(BaseMetric):
    """Base of the evaluators: the student and/or the teacher, computed on every rank and gathered exactly.

    Every rank runs the model on its shard; ``evaluate`` gathers every result (MMEngine would truncate the
    rank-interleaved list to the dataset size, which removes sampler padding only when the padding sits at the end of
    that order) and :meth:`unique` drops the duplicates by a per-sample key and sorts by it. The numbers are then those
    of one process over the whole set, for any sharding, bit for bit.

    Metric names: the student's plain (``top1``), the teacher's prefixed (``teacher/top1``), so both log together
    (``zero-shot/top1``, ``zero-shot/teacher/top1``).

    Args:
        network (str): ``'student'``, ``'teacher'`` (the EMA teacher's copies) or ``'both'``.
        dataset_name (str, optional): Name in the CLIP_benchmark JSON; the dataset's ``data_root`` folder name when
            None.
        prefix (str, optional): Metric name prefix (``default_prefix`` when None).
        collect_device (str): Where results are gathered across ranks (``'cpu'`` or ``'gpu'``).
    """

    benchmark_task: Optional[str] = None  # CLIP_benchmark task name, None when the metric has no JSON record

    def __init__(self, network: str = 'student', dataset_name: Optional[str] = None, prefix: Optional[str] = None,
                 collect_device: str = 'cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if network not in (*NETWORKS, 'both'):
            raise ValueError(f'{type(self).__name__}: unknown network {network!r}; use "student", "teacher" or "both"')
        self.networks = NETWORKS if network == 'both' else (network, )
        self.dataset_name = dataset_name
        self._size: Optional[int] = None

    def prepare(self, model) -> None:
        """Ask the model to encode this metric's networks (called by the loop before each evaluation)."""
        model.request_eval_networks(self.networks)

    def evaluate(self, size: int) -> dict:
        """Gather every rank's results whole (``size`` = dataset length, checked in :meth:`unique`) and compute."""
        self._size = size
        return super().evaluate(sys.maxsize)

    def unique(self, results: List[dict]) -> List[dict]:
        """``results`` without repeats of a ``key`` (sampler padding), sorted by it; warns when samples are lacking
        (skipped unreadable files, or a ``drop_last`` evaluation loader)."""
        by_key = {r['key']: r for r in results}
        if self._size is not None and len(by_key) != self._size:
            print_log(f'{type(self).__name__}: {len(by_key)} distinct samples evaluated, the dataset has '
                      f'{self._size} (skipped unreadable samples or drop_last=True in the evaluation loader)',
                      logger='current', level=30)
        return [by_key[k] for k in sorted(by_key)]

    @staticmethod
    def sample_key(sample: dict, field: str, metric: str):
        """The per-sample key ``sample[field]``; a clear error when the pipeline does not pack it."""
        if field not in sample:
            raise KeyError(f'{metric} needs {field!r} in each data sample to gather results exactly: add it to the '
                           f'meta_keys of PackImageText in the evaluation pipeline')
        return sample[field]

    @staticmethod
    def network_fields(sample: dict, name: str, networks: Sequence[str]) -> dict:
        """``{network: sample[<name> of that network]}`` as float CPU tensors."""
        return {t: sample[network_field(name, t)].float().cpu() for t in networks}

    @staticmethod
    def network_names(network: str, metrics: Dict[str, float]) -> Dict[str, float]:
        """``metrics`` named for ``network``: unchanged for the student, ``<network>/<name>`` otherwise."""
        return dict(metrics) if network == 'student' else {f'{network}/{k}': v for k, v in metrics.items()}

    def per_network(self, metrics: Dict[str, float]) -> Dict[str, Dict[str, float]]:
        """This metric's entries of an evaluation's metrics dict (prefixed names), per network, unprefixed."""
        head = f'{self.prefix}/' if self.prefix else ''
        out = {}
        for network in self.networks:
            start = head if network == 'student' else f'{head}{network}/'
            out[network] = {k[len(start):]: v for k, v in metrics.items()
                            if k.startswith(start) and '/' not in k[len(start):]}
        return out

    def benchmark_metrics(self, values: Dict[str, float]) -> Dict[str, float]:
        """One network's metrics in CLIP_benchmark's names and units (overridden where ``benchmark_task`` is set)."""
        raise NotImplementedError(f'{type(self).__name__} has no CLIP_benchmark record')


class ClassificationMetric(NetworkMetric):
    """Base of the metrics that classify each evaluation image (zero-shot, kNN): one result per image, keyed by its
    path, with its label and its ``image_field`` per network; :meth:`classify` scores one network's images.

    Subclasses set ``image_field`` and implement :meth:`prepared` (whether ``prepare`` built what :meth:`classify`
    needs) and :meth:`classify`.
    """

    image_field: str  # the data-sample field classified, per network: 'image_embeds' or 'image_feats'

    def labelled_result(self, sample: dict) -> dict:
        """``dict(key=img_path, label=gt_label, images={network: image_field})`` of one data sample."""
        return dict(key=self.sample_key(sample, 'img_path', type(self).__name__), label=int(sample['gt_label']),
                    images=self.network_fields(sample, self.image_field, self.networks))

    def process(self, data_batch, data_samples: Sequence) -> None:
        self.results.extend(self.labelled_result(sample) for sample in data_samples)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not self.prepared():
            raise RuntimeError(f'{type(self).__name__}.prepare(model) was not called: use MultiValLoop/MultiTestLoop')
        results = self.unique(results)
        labels = torch.tensor([r['label'] for r in results])
        metrics = {}
        for network in self.networks:
            images = torch.stack([r['images'][network] for r in results])
            metrics.update(self.network_names(network, self.classify(network, images, labels)))
        return metrics

    def prepared(self) -> bool:
        raise NotImplementedError

    def classify(self, network: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
        """The metrics (unprefixed) of ``network``'s (N, D) ``images`` against their (N,) ``labels``."""
        raise NotImplementedError
