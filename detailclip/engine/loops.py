"""Training loop that resumes its sampler in place, and evaluation loops over several tasks."""
from typing import Dict, List, Optional, Sequence, Union

from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from detailclip.registry import LOOPS


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """:class:`IterBasedTrainLoop` whose resume moves the sampler instead of loading and dropping trained batches.

    MMEngine's loop calls ``next()`` on the data iterator once per trained iteration when it resumes, which decodes
    and augments every sample again. Here the sampler (:class:`ResumableInfiniteSampler`) starts at the sample
    after the last trained one, and the skip is a no-op.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): Training dataloader or its config.
        max_iters (int, optional): Training length in iterations.
        max_epochs (float, optional): Training length in passes over the dataset (instead of ``max_iters``).
        val_at_start (bool): Also validate before the first iteration, so logs hold the untrained model's metrics.
        **kwargs: :class:`IterBasedTrainLoop` arguments (``val_interval``, ...).
    """

    def __init__(self, runner, dataloader, max_iters: Optional[int] = None, max_epochs: Optional[float] = None,
                 val_at_start: bool = False, **kwargs):
        if (max_iters is None) == (max_epochs is None):
            raise ValueError('train_cfg: give exactly one of max_iters and max_epochs')
        if isinstance(dataloader, dict):
            diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
            dataloader = runner.build_dataloader(dataloader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        if max_iters is None:
            max_iters = round(max_epochs * len(dataloader))
        super().__init__(runner, dataloader, max_iters, **kwargs)
        self._max_epochs = max_iters / len(dataloader)  # epoch-unit schedules are converted with this length
        self.val_at_start = val_at_start

    def run(self):
        if self.val_at_start and self._iter == 0 and self.runner.val_loop is not None:
            self.runner.val_loop.run()
        if self._iter > 0:
            loader = self.dataloader
            # a map-style dataset resumes through its sampler, a stream (WebImageTextDataset) through itself
            resumable = loader.sampler if hasattr(loader.sampler, 'set_position') else loader.dataset
            if not hasattr(resumable, 'set_position'):
                raise TypeError(f'{type(self).__name__} needs a sampler or an iterable dataset with set_position() '
                                f'to resume (e.g. ResumableInfiniteSampler), got {type(loader.sampler).__name__}')
            resumable.set_position(self._iter * loader.batch_size)
            self.dataloader_iterator = _SkipAhead(_InfiniteDataloaderIterator(loader), self._iter)
        return super().run()


class _SkipAhead:
    """Iterator whose first ``n`` ``next()`` calls return None without touching the wrapped iterator."""

    def __init__(self, iterator, n: int):
        self.iterator, self.remaining = iterator, n

    def __iter__(self):
        return self

    def __next__(self):
        if self.remaining > 0:
            self.remaining -= 1
            return None
        return next(self.iterator)


class _MultiTaskLoop(BaseLoop):
    """Runs several (dataloader, evaluator) tasks as one evaluation; metrics are merged (prefix each metric).

    Metrics with a ``prepare(model)`` method (e.g. the zero-shot classifier, which embeds its class prompts) are
    prepared before their task runs. ``self.dataloader``/``self.evaluator`` point at the running task, so the
    logger's progress counts are per task.
    """

    phase = 'val'
    single_loop = ValLoop

    def __init__(self, runner, dataloader: Union[dict, Sequence[dict]], evaluator: Union[dict, list, Evaluator],
                 fp16: bool = False):
        dataloaders = [dataloader] if isinstance(dataloader, dict) else list(dataloader)
        evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        if len(dataloaders) != len(evaluators):
            raise ValueError(f'{type(self).__name__}: {len(dataloaders)} dataloaders but {len(evaluators)} '
                             'evaluators; give one evaluator (a metric or list of metrics) per dataloader')
        self.tasks: List[ValLoop] = [self.single_loop(runner, d, e, fp16)
                                     for d, e in zip(dataloaders, evaluators)]
        self._runner = runner
        self.dataloader, self.evaluator = self.tasks[0].dataloader, self.tasks[0].evaluator

    def run(self) -> Dict[str, float]:
        self.runner.call_hook(f'before_{self.phase}')
        self.runner.call_hook(f'before_{self.phase}_epoch')
        self.runner.model.eval()
        metrics = {}
        for task in self.tasks:
            metrics.update(self._run_task(task))
        self.runner.call_hook(f'after_{self.phase}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{self.phase}')
        return metrics

    def _run_task(self, task) -> Dict[str, float]:
        self.dataloader, self.evaluator = task.dataloader, task.evaluator
        model = self.runner.model.module if is_model_wrapper(self.runner.model) else self.runner.model
        for metric in task.evaluator.metrics:
            if hasattr(metric, 'prepare'):
                metric.prepare(model)
        for idx, data_batch in enumerate(task.dataloader):
            task.run_iter(idx, data_batch)
        return task.evaluator.evaluate(len(task.dataloader.dataset))


@LOOPS.register_module()
class MultiValLoop(_MultiTaskLoop):
    """Validation over several tasks (zero-shot classification, retrieval, ...)."""


@LOOPS.register_module()
class MultiTestLoop(_MultiTaskLoop):
    """Testing over several tasks (``tools/test.py``)."""

    phase = 'test'
    single_loop = TestLoop
