"""What every evaluator shares: the towers it evaluates, and results gathered exactly from every rank."""
import sys
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from detailclip.models.pretrainer import TOWERS, tower_field

__all__ = ['TowerMetric', 'tower_field']


class TowerMetric(BaseMetric):
    """Base of the evaluators: the student and/or EMA tower, computed on every rank and gathered exactly.

    Every rank runs the model on its shard; ``evaluate`` gathers every result (MMEngine would truncate the
    rank-interleaved list to the dataset size, which removes sampler padding only when the padding sits at the end of
    that order) and :meth:`unique` drops the duplicates by a per-sample key and sorts by it. The numbers are then those
    of one process over the whole set, for any sharding, bit for bit.

    Metric names: the student's plain (``top1``), other towers prefixed (``ema/top1``), so both log together
    (``zero-shot/top1``, ``zero-shot/ema/top1``).

    Args:
        tower (str): ``'student'``, ``'ema'`` (the EMA teacher's copies) or ``'both'``.
        dataset_name (str, optional): Name in the CLIP_benchmark JSON; the dataset's ``data_root`` folder name when
            None.
        prefix (str, optional): Metric name prefix (``default_prefix`` when None).
        collect_device (str): Where results are gathered across ranks (``'cpu'`` or ``'gpu'``).
    """

    benchmark_task: Optional[str] = None  # CLIP_benchmark task name, None when the metric has no JSON record

    def __init__(self, tower: str = 'student', dataset_name: Optional[str] = None, prefix: Optional[str] = None,
                 collect_device: str = 'cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if tower not in (*TOWERS, 'both'):
            raise ValueError(f'{type(self).__name__}: unknown tower {tower!r}; use "student", "ema" or "both"')
        self.towers = TOWERS if tower == 'both' else (tower, )
        self.dataset_name = dataset_name
        self._size: Optional[int] = None

    def prepare(self, model) -> None:
        """Ask the model to encode this metric's towers (called by the loop before each evaluation)."""
        model.request_eval_towers(self.towers)

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
    def tower_fields(sample: dict, name: str, towers: Sequence[str]) -> dict:
        """``{tower: sample[<name> of that tower]}`` as float CPU tensors."""
        return {t: sample[tower_field(name, t)].float().cpu() for t in towers}

    @staticmethod
    def tower_names(tower: str, metrics: Dict[str, float]) -> Dict[str, float]:
        """``metrics`` named for ``tower``: unchanged for the student, ``<tower>/<name>`` otherwise."""
        return dict(metrics) if tower == 'student' else {f'{tower}/{k}': v for k, v in metrics.items()}

    def per_tower(self, metrics: Dict[str, float]) -> Dict[str, Dict[str, float]]:
        """This metric's entries of an evaluation's metrics dict (prefixed names), per tower, unprefixed."""
        head = f'{self.prefix}/' if self.prefix else ''
        out = {}
        for tower in self.towers:
            start = head if tower == 'student' else f'{head}{tower}/'
            out[tower] = {k[len(start):]: v for k, v in metrics.items()
                          if k.startswith(start) and '/' not in k[len(start):]}
        return out

    def benchmark_metrics(self, values: Dict[str, float]) -> Dict[str, float]:
        """One tower's metrics in CLIP_benchmark's names and units (overridden where ``benchmark_task`` is set)."""
        raise NotImplementedError(f'{type(self).__name__} has no CLIP_benchmark record')
