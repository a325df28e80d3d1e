"""Stops training at the first non-finite loss, before anything saves the diverged state."""
import math
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook

from detailclip.registry import HOOKS
from detailclip.utils.dist import get_world_size


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite; the message names the iteration, the terms and their values."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raises :class:`NonFiniteLossError` after an iteration whose loss terms (the keys with ``loss`` in their name,
    as ``parse_losses`` sums them) are not all finite.

    It runs first after each iteration, before the EMA update, logging and :class:`AtomicCheckpointHook`, so no
    checkpoint of the diverged state is written and the last saved one stays the last good state. Under DDP the
    ranks agree through one all-reduce of a flag, so every rank stops at the same iteration instead of hanging.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        terms = {k: v for k, v in (outputs or {}).items() if 'loss' in k}
        if not terms:
            return
        values = torch.stack([torch.as_tensor(v).detach().float().reshape(()) for v in terms.values()])
        bad = (~values.isfinite()).any().float()
        if get_world_size() > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bad.item():
            raise NonFiniteLossError(_message(runner, dict(zip(terms, values.tolist()))))


def _message(runner, values: Dict[str, float]) -> str:
    """What diverged, where, and what to do."""
    bad = ', '.join(f'{k}={v}' for k, v in values.items() if not math.isfinite(v)) or 'a term on another rank'
    others = ', '.join(f'{k}={v:.4g}' for k, v in values.items() if math.isfinite(v))
    last = runner.message_hub.get_info('last_ckpt')
    resume = f'the last checkpoint, {last}, holds the last finite state' if last else 'no checkpoint was saved yet'
    return (f'non-finite loss at iteration {runner.iter + 1}: {bad}' + (f' (finite: {others})' if others else '') +
            f'. Training stopped before saving this state; {resume}. Lower the learning rate or enable gradient '
            'clipping (optim_wrapper.clip_grad), then --resume')
