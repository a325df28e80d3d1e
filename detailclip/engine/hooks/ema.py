"""Moves the EMA teacher after every optimizer step with the cosine momentum schedule."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS


def cosine_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """m_t = final - (final - base) * (1 + cos(pi t / T)) / 2: ``base`` at t = 0, ``final`` at t = T (BYOL, DINO)."""
    return final - (final - base) * (1 + math.cos(math.pi * min(step, total) / max(total, 1))) / 2


def half_life_momentum(half_life_iters: float) -> float:
    """The momentum m with m ** half_life_iters = 1/2: after that many steps the teacher keeps half its old weights."""
    if half_life_iters <= 0:
        raise ValueError(f'the teacher half-life must be positive, got {half_life_iters} iterations')
    return 0.5 ** (1.0 / half_life_iters)


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Calls ``model.update_teacher(m)`` once per optimizer step, the only place the teacher changes.

    The reference updates the teacher with m_t at the start of step t, before the teacher pass (docs/methods.md Q-D8);
    updating after step t with m_{t+1} gives the same teacher to every step.

    A fixed base momentum suits the run length it was tuned for: 0.996 halves the teacher's distance to the student
    every 173 steps, 0.1 % of a paper run but half of a few-hundred-step run, whose teacher then still holds much of
    its random init at the end. ``half_life_epochs`` states the base momentum as a length of training instead, so it
    follows the iterations per epoch (batch size, data set size).

    Args:
        momentum (float): Momentum at the first step (0.996); ignored when ``half_life_epochs`` is set.
        final_momentum (float): Momentum at the last step (1.0).
        schedule (str): ``'cosine'`` (m -> final over training) or ``'constant'``.
        half_life_epochs (float, optional): The first step's momentum is :func:`half_life_momentum` of this many
            epochs of iterations (the train dataloader's length), set when training starts.
    """

    priority = 'ABOVE_NORMAL'  # before checkpointing and logging of the same iteration

    def __init__(self, momentum: float = 0.996, final_momentum: float = 1.0, schedule: str = 'cosine',
                 half_life_epochs: Optional[float] = None):
        if schedule not in ('cosine', 'constant'):
            raise ValueError(f'unknown EMA schedule {schedule!r}: use "cosine" or "constant"')
        if not 0 <= momentum <= 1:
            raise ValueError(f'EMA momentum must be in [0, 1], got {momentum}')
        if half_life_epochs is not None and half_life_epochs <= 0:
            raise ValueError(f'half_life_epochs must be positive, got {half_life_epochs}')
        self.momentum, self.final_momentum, self.schedule = momentum, final_momentum, schedule
        self.half_life_epochs = half_life_epochs

    def before_train(self, runner) -> None:
        if self.half_life_epochs is not None:
            self.momentum = half_life_momentum(self.half_life_epochs * len(runner.train_dataloader))

    def momentum_at(self, step: int, total: int) -> float:
        if self.schedule == 'constant':
            return self.momentum
        return cosine_momentum(step, total, self.momentum, self.final_momentum)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        momentum = self.momentum_at(runner.iter + 1, runner.max_iters)
        model.update_teacher(momentum)
        runner.message_hub.update_scalar('train/ema_momentum', momentum)
