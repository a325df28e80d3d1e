"""The SLIP-family learning-rate schedule: linear warm-up from a small value, then cosine, per iteration."""
import logging
import math

from mmengine.logging import print_log
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from detailclip.registry import PARAM_SCHEDULERS


def warmup_cosine(step: int, total: int, warmup: int, peak: float, start: float, final: float) -> float:
    """Value at ``step`` of a linear ramp ``start -> peak`` over ``warmup`` steps (both ends included), then a cosine
    ``peak -> final`` over the remaining ``total - warmup`` steps (docs/methods.md 1.6)."""
    if step < warmup:
        return start + (peak - start) * step / max(warmup - 1, 1)
    n = max(total - warmup, 1)
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * (step - warmup) / n))


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(LRSchedulerMixin, _ParamScheduler):
    """Per-iteration warm-up + cosine learning rate; the peak is each group's configured ``lr``.

    Configure it in epochs with ``by_epoch=True, convert_to_iter_based=True`` (the runner then passes the epoch
    length, and ``end`` defaults to the training length), or directly in iterations with ``warmup_iters``.

    A resumed run follows the schedule its config builds (:meth:`load_state_dict`): resumed with a larger
    ``max_epochs``, the cosine is stretched to the new end, as if the run had been configured so from the start.

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

    SHAPE = ('begin', 'end', 'warmup', 'start_lr', 'end_lr')  # set by the config, kept on resume

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

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume the position (the step count, the peak values) from ``state_dict`` but keep this schedule's shape
        (:data:`SHAPE`, from the config): the lr then is what a run configured so from the start has at this step.
        MMEngine's default loads the checkpoint's shape too, so a run resumed with a larger ``max_epochs`` kept the
        old end and a flat lr after it."""
        shape = {key: getattr(self, key) for key in self.SHAPE}
        super().load_state_dict(state_dict)
        changed = [f'{key} {getattr(self, key)} -> {new}' for key, new in shape.items() if getattr(self, key) != new]
        if not changed:
            return
        self.__dict__.update(shape)
        self.last_step = max(min(self._global_step, self.end - 1) - self.begin, -1)  # as a run of this shape counts
        if self.last_step >= 0:
            for group, value in zip(self.optimizer.param_groups, self._get_value()):
                group[self.param_name] = value
        self._last_value = [group[self.param_name] for group in self.optimizer.param_groups]
        print_log(f'{type(self).__name__}: the config changed the resumed schedule ({", ".join(changed)}); the lr '
                  f'follows the new one from step {self._global_step} (now {self._last_value[0]:.3g})',
                  logger='current', level=logging.WARNING)

    def _get_value(self):
        total = self.end - self.begin
        return [warmup_cosine(self.last_step, total, self.warmup, peak, self.start_lr, self.end_lr)
                for peak in self.base_values]
