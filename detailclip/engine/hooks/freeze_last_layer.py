"""DINO / iBOT's head output layer held fixed during the first epoch."""
from typing import List

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS


@HOOKS.register_module()
class FreezeLastLayerHook(Hook):
    """Keep the student's ``last_layer`` parameters (the weight-normalised K-way output layer of the DINO / iBOT heads)
    fixed for the first ``epochs`` epochs (DINO arXiv 2104.14294, iBOT's ``freeze_last_layer=1``; docs/methods.md 8.2).

    Their gradients are zeroed as autograd produces them (under DDP before the all-reduce), so the optimizer moves
    them by nothing: Adam's moments stay 0. The reference drops those gradients instead, which also skips AdamW's
    decay of ``weight_v``; a weight-normalised layer's output does not depend on that norm. The epoch is
    ``runner.iter // len(train_dataloader)``, so a resumed run freezes the same iterations.

    Args:
        epochs (int): Epochs with the layer fixed.
        pattern (str): Substring of the names of the parameters to fix (the EMA teacher's copies have no gradient).
    """

    priority = 'NORMAL'

    def __init__(self, epochs: int = 1, pattern: str = 'last_layer'):
        if epochs < 0:
            raise ValueError(f'FreezeLastLayerHook needs epochs >= 0, got {epochs}')
        self.epochs = epochs
        self.pattern = pattern
        self.frozen = False
        self._handles: List[torch.utils.hooks.RemovableHandle] = []

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = [p for name, p in model.named_parameters() if self.pattern in name and p.requires_grad]
        if not params:
            raise ValueError(f'FreezeLastLayerHook found no trainable parameter named "*{self.pattern}*": remove the '
                             'hook from the config or set its pattern')
        self._handles = [p.register_hook(self._mask) for p in params]

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.frozen = runner.iter // len(runner.train_dataloader) < self.epochs

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _mask(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad) if self.frozen else grad
