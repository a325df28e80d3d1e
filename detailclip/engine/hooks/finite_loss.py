"""Stops training at the first non-finite loss or gradient norm, before the optimizer applies that step."""
import math
import os.path as osp
from functools import partial
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from detailclip.registry import HOOKS
from detailclip.utils.checkpoint import atomic_write
from detailclip.utils.dist import get_world_size


class NonFiniteLossError(FloatingPointError):
    """A loss term or the gradient norm was NaN or infinite; the message names the iteration, the values and the
    checkpoint to resume from."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises :class:`NonFiniteLossError` before a step whose loss terms (the keys with ``loss`` in their name, as
    ``parse_losses`` sums them) or gradient norm are not all finite, so no non-finite update is ever applied.

    The checks sit on PyTorch's public hooks, so they hold for every optim wrapper (plain, autocast, AMP, gradient
    accumulation): a forward hook on the model records the training loss terms, and an optimizer step pre-hook
    checks them with the gradient norm after backward (and after gradient clipping), before the update. With a
    ``GradScaler`` (``AmpOptimWrapper``) an infinite gradient is a normal skipped step: the scaler does not call the
    optimizer's ``step``, so the pre-hook does not run and training goes on with a lower scale. An iteration without
    an optimizer step (a skipped one, or gradient accumulation) has its loss checked after the iteration, before the
    EMA update, logging and checkpointing. Under DDP the ranks agree through one all-reduce of the flags per check.

    The weights a failing iteration starts from produced the non-finite value, so the checkpoint holding them is not
    a good state. The hook records, as ``last_finite_ckpt`` in the message hub (saved with every checkpoint), the
    last checkpoint from whose weights training went on with finite values; on a stop it names that checkpoint and
    points ``last_checkpoint`` at it, so ``--resume`` continues from it. Keep ``max_keep_ckpts >= 2``, or a
    divergence right after a save finds that checkpoint deleted.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._handles, self._losses, self._stepped = [], {}, False

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._handles = [model.register_forward_hook(self._record_losses)]
        self._handles += [optimizer.register_step_pre_hook(partial(self._before_step, runner))
                          for optimizer in _optimizers(runner.optim_wrapper)]

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._losses, self._stepped = {}, False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if not self._stepped:
            self.check(runner)
        # the weights of the last checkpoint have now given finite values (in this iteration or an earlier one)
        runner.message_hub.update_info('last_finite_ckpt', runner.message_hub.get_info('last_ckpt'))

    def _record_losses(self, module, args, output) -> None:
        if module.training and isinstance(output, dict):
            self._losses = {k: v for k, v in output.items() if 'loss' in k}

    def _before_step(self, runner, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        self._stepped = True
        grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        self.check(runner, torch.nn.utils.get_total_norm(grads) if grads else None)

    def check(self, runner, grad_norm: Optional[torch.Tensor] = None) -> None:
        """Raise :class:`NonFiniteLossError` when a recorded loss term or ``grad_norm`` (scalar) is not finite on
        any rank. One host read (and one all-reduce under DDP) per call."""
        terms = {k: _scalar(v) for k, v in self._losses.items()}
        if grad_norm is not None:
            terms['grad_norm'] = grad_norm.detach().float().reshape(())
        if not terms:
            return
        device = next(iter(terms.values())).device
        values = torch.stack([v.to(device) for v in terms.values()])
        bad = (~values.isfinite()).any().float()
        if get_world_size() > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bad.item():
            raise NonFiniteLossError(_message(runner, dict(zip(terms, values.tolist()))))


def _optimizers(optim_wrapper) -> List[torch.optim.Optimizer]:
    """The optimizers of an optim wrapper or of each wrapper of an :class:`OptimWrapperDict`."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        return [wrapper.optimizer for wrapper in optim_wrapper.optim_wrappers.values()]
    return [optim_wrapper.optimizer]


def _scalar(value) -> torch.Tensor:
    """A loss entry (a tensor or a list of tensors, as ``parse_losses`` accepts) as the float scalar it adds."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    return torch.stack([torch.as_tensor(p).detach().float().mean() for p in parts]).sum()


def _message(runner, values: Dict[str, float]) -> str:
    """What diverged, where, and which checkpoint to resume from."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    what = 'gradient norm' if bad == ['grad_norm'] else 'loss' if bad else 'loss or gradient norm'
    shown = ', '.join(f'{k}={values[k]}' for k in bad) or 'on another rank'
    others = ', '.join(f'{k}={v:.4g}' for k, v in values.items() if math.isfinite(v))
    return (f'non-finite {what} at iteration {runner.iter + 1}: {shown}' + (f' (finite: {others})' if others else '') +
            f'. Training stopped before this step updated the weights; {_resume_point(runner)}. Lower the learning '
            'rate or enable gradient clipping (optim_wrapper.clip_grad), then --resume')


def _resume_point(runner) -> str:
    """Names the last checkpoint whose weights gave finite values and points ``last_checkpoint`` at it."""
    last, finite = (runner.message_hub.get_info(key) for key in ('last_ckpt', 'last_finite_ckpt'))
    if not (finite and osp.isfile(finite)):
        if last:
            return (f'{last} holds the weights that gave this value and no earlier checkpoint is left (keep one: '
                    'default_hooks.checkpoint.max_keep_ckpts >= 2)')
        return 'no checkpoint was saved yet'
    if last == finite:
        return f'the last checkpoint, {finite}, holds weights that trained on with finite values'
    if is_main_process():
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), str(finite).encode())
    return (f'{last} holds the weights that gave this value; {finite} is the last checkpoint whose weights trained '
            'on with finite values, and last_checkpoint now points to it')
