"""The SLIP-family learning-rate schedule: linear warm-up from a small value, then cosine, per iteration."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from detailclip.registry import PARAM_SCHEDULERS


def warmup_cosine(step: int, total: int, warmup: int, peak: float, start: float, final: float) -> float:
    """Value at ``step`` of a linear ramp ``start -> peak`` over ``warmup`` steps (both ends included), then a cosine
    ``peak -> final`` over the remaining ``total - warmup`` steps (methods.md 1.6)."""
    if step < warmup:
        return start + (peak - start) * step / max(warmup - 1, 1)
    n = max(total - warmup, 1)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * (step - warmup) / n))


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(LRSchedulerMixin, _ParamScheduler):
    """Per-iteration warm-up + cosine learning rate; the peak is each group's configured ``lr``.

    Configure it in epochs with ``by_epoch=True, convert_to_iter_based=True`` (the runner then passes the epoch
    length, and ``end`` defaults to the training length), or directly in iterations with ``warmup_iters``.

    Args:
        optimizer: Wrapped optimizer.
        warmup_iters (int): Warm-up length in iterations.
        start_lr (float): Learning rate at the first iteration.
        end_lr (float): Learning rate the cosine ends at.
        begin (int): First iteration of the schedule.
        end (int): Iteration after the last; the total length is ``end - begin``.
        last_step (int): Resume point (-1 to start).
        by_epoch (bool): Must be False here (see :meth:`build_iter_from_epoch`).
        verbose (bool): Print each update.
    """

    def __init__(self, optimizer, warmup_iters: int, start_lr: float = 1e-6, end_lr: float = 1e-5, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = False, verbose: bool = False):
        if by_epoch or end == INF:
            raise ValueError('WarmupCosineLR steps per iteration: use by_epoch=True with convert_to_iter_based=True, '
                             'or by_epoch=False with a finite end')
        self.warmup, self.start_lr, self.end_lr = warmup_iters, start_lr, end_lr
        super().__init__(optimizer, begin=begin, end=end, last_step=last_step, by_epoch=False,
                         verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, warmup_epochs: float = 1, begin: float = 0, end: float = INF,
                              epoch_length: int = None, **kwargs):
        """Build from epoch units (``warmup_epochs``, ``begin``, ``end``) given the iterations per epoch."""
        if not epoch_length or end == INF:
            raise ValueError('converting WarmupCosineLR to iterations needs epoch_length and a finite end')
        kwargs.pop('by_epoch', None)
        return cls(*args, warmup_iters=round(warmup_epochs * epoch_length), begin=round(begin * epoch_length),
                   end=round(end * epoch_length), by_epoch=False, **kwargs)

    def _get_value(self):
        total = self.end - self.begin
        return [warmup_cosine(self.last_step, total, self.warmup, peak, self.start_lr, self.end_lr)
                for peak in self.base_values]
