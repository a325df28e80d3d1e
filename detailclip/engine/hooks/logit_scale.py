"""Keeps the contrastive logit multiplier within CLIP's bound after every optimizer step."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS


@HOOKS.register_module()
class LogitScaleClampHook(Hook):
    """Calls ``model.clamp_logit_scale()`` after each training iteration (CLIP arXiv 2103.00020: s <= 100)."""

    priority = 'LOW'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.clamp_logit_scale()
