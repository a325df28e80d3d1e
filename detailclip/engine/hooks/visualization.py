"""Periodic images of the teacher attention, the token mask and the MAE reconstruction of a training batch."""
from typing import Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS
from detailclip.visualization import mask_panels, panel_grid


@HOOKS.register_module()
class PretrainVisualizationHook(Hook):
    """Every ``interval`` training iterations and after the last, log the :func:`~detailclip.visualization.panel_grid`
    of the current training batch as the image ``masks`` through ``runner.visualizer`` (step = iterations done): the
    LocalVisBackend writes ``vis_data/vis_image/masks_<step>.png``, a W&B backend logs it.

    Runs on the main process only, with torch's RNG state forked, so training draws the same masks with or without
    it; a no-op for models with nothing to show (no teacher attention, no mask: CLIP, SLIP).

    Args:
        interval (int): Iterations between images.
        num_images (int): Samples of the batch shown (rows of the image).
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_images: int = 4):
        if interval < 1 or num_images < 1:
            raise ValueError(f'PretrainVisualizationHook needs interval >= 1 and num_images >= 1, got {interval} and '
                             f'{num_images}')
        self.interval = interval
        self.num_images = num_images

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None, outputs=None) -> None:
        due = self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner)
        if not due or data_batch is None or not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            inputs = model.data_preprocessor(data_batch, False)['inputs']
            panels = mask_panels(model, inputs, self.num_images)
        if panels:
            runner.visualizer.add_image('masks', panel_grid(panels), step=runner.iter + 1)
