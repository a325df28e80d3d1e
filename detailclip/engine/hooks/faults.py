"""Deterministic fault injection for the crash, resume and divergence tests (test-only; never in method configs)."""
import os
import signal
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS
from detailclip.utils.checkpoint import arm_write_fault


@HOOKS.register_module()
class FaultInjectionHook(Hook):
    """Makes a training run fail at a chosen point, with no timing involved. Iterations count from 1, as logged.

    Args:
        kill_at_iter (int, optional): SIGKILL this process inside iteration ``kill_at_iter``, right after the model's
            forward pass (before backward, the optimizer step and every after-iteration hook).
        nan_at_iter (int, optional): Multiply the loss term ``nan_term`` by NaN in iteration ``nan_at_iter``.
        nan_term (str): The ``loss_*`` key made NaN.
        kill_in_write (str, optional): File name (e.g. ``'iter_4.pth'``) whose write is cut after
            ``after_bytes`` bytes of its temporary file by SIGKILL (see
            :func:`~detailclip.utils.checkpoint.arm_write_fault`).
        after_bytes (int): Bytes written before the write is cut.
    """

    priority = 'VERY_HIGH'

    def __init__(self, kill_at_iter: Optional[int] = None, nan_at_iter: Optional[int] = None,
                 nan_term: str = 'loss_clip', kill_in_write: Optional[str] = None, after_bytes: int = 0):
        self.kill_at_iter, self.nan_at_iter, self.nan_term = kill_at_iter, nan_at_iter, nan_term
        self.kill_in_write, self.after_bytes = kill_in_write, after_bytes
        self._handle = None

    def before_train(self, runner) -> None:
        if self.kill_in_write:
            arm_write_fault(self.kill_in_write, self.after_bytes, 'kill')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if runner.iter + 1 == self.kill_at_iter:
            self._handle = model.register_forward_hook(lambda *_: os.kill(os.getpid(), signal.SIGKILL))
        elif runner.iter + 1 == self.nan_at_iter:
            # first among the forward hooks, so observers (FiniteLossHook) see the injected value as the model's output
            self._handle = model.register_forward_hook(self._nan_output, prepend=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _nan_output(self, module, args, output: dict) -> dict:
        if self.nan_term not in output:
            raise KeyError(f'FaultInjectionHook: the model returned no {self.nan_term!r}; pick one of '
                           f'{sorted(k for k in output if k.startswith("loss"))}')
        return {**output, self.nan_term: output[self.nan_term] * float('nan')}
