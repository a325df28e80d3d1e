"""Moves the EMA teacher after every optimizer step with the cosine momentum schedule."""
import math

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS


def cosine_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """m_t = final - (final - base) * (1 + cos(pi t / T)) / 2: ``base`` at t = 0, ``final`` at t = T (BYOL, DINO)."""
    return final - (final - base) * (1 + math.cos(math.pi * min(step, total) / max(total, 1))) / 2


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Calls ``model.update_teacher(m)`` once per optimizer step, the only place the teacher changes.

    The reference updates the teacher with m_t at the start of step t, before the teacher pass (methods.md Q-D8);
    updating after step t with m_{t+1} gives the same teacher to every step.

    Args:
        momentum (float): Momentum at the first step (0.996).
        final_momentum (float): Momentum at the last step (1.0).
        schedule (str): ``'cosine'`` (m -> final over training) or ``'constant'``.
    """

    priority = 'ABOVE_NORMAL'  # before checkpointing and logging of the same iteration

    def __init__(self, momentum: float = 0.996, final_momentum: float = 1.0, schedule: str = 'cosine'):
        if schedule not in ('cosine', 'constant'):
            raise ValueError(f'unknown EMA schedule {schedule!r}: use "cosine" or "constant"')
        if not 0 <= momentum <= 1:
            raise ValueError(f'EMA momentum must be in [0, 1], got {momentum}')
        self.momentum, self.final_momentum, self.schedule = momentum, final_momentum, schedule

    def momentum_at(self, step: int, total: int) -> float:
        if self.schedule == 'constant':
            return self.momentum
        return cosine_momentum(step, total, self.momentum, self.final_momentum)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        momentum = self.momentum_at(runner.iter + 1, runner.max_iters)
        model.update_teacher(momentum)
        runner.message_hub.update_scalar('train/ema_momentum', momentum)
