"""Moves uint8 views to the device, normalises them there and stacks views and tokens into batches."""
from typing import Sequence

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor

from detailclip.registry import MODELS

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@MODELS.register_module()
class ImageTextDataPreprocessor(BaseDataPreprocessor):
    """``pseudo_collate`` output -> ``dict(inputs=dict(views=[(B, 3, H, W) float], text=(B, L)), data_samples)``.

    When the pipeline gives them, ``teacher_views`` are normalised like ``views`` and the per-sample
    (V + V_t, 4) crop ``boxes`` are stacked to (B, V + V_t, 4) on the device.

    Args:
        mean (Sequence[float]): Per-channel mean on the 0-255 scale (ImageNet's, as the reference recipes use).
        std (Sequence[float]): Per-channel standard deviation on the 0-255 scale.
        non_blocking (bool): Asynchronous host-to-device copies.
        trim_text_padding (bool): Drop the token columns that are padding (id 0) in every caption of the batch, on
            the host before the upload, so the text encoder runs on the longest caption's length, not
            ``context_length``. Its attention is causal and it pools the EOT token, so the features stay the same.
            False: every caption at full length, as the reference code runs them.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 non_blocking: bool = True, trim_text_padding: bool = True):
        super().__init__(non_blocking)
        self.trim_text_padding = trim_text_padding
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        batch = dict(views=[self._normalise(torch.stack(v)) for v in inputs['views']])
        if 'teacher_views' in inputs:
            batch['teacher_views'] = [self._normalise(torch.stack(v)) for v in inputs['teacher_views']]
        if 'boxes' in inputs:
            batch['boxes'] = self.cast_data(torch.stack(inputs['boxes']))
        if 'text' in inputs:
            batch['text'] = self.cast_data(self._stack_text(inputs['text']))
        return dict(inputs=batch, data_samples=data.get('data_samples'))

    def _stack_text(self, rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """B (L,) id rows -> (B, L'): with ``trim_text_padding``, without the trailing columns that are padding in
        every row (read from the rows as the host arrays they are, before the upload; rows already on a device are
        kept whole)."""
        tokens = torch.stack(list(rows))
        if not self.trim_text_padding or any(row.device.type != 'cpu' for row in rows):
            return tokens
        used = np.flatnonzero(np.asarray([row.tolist() for row in rows]).any(0))
        return tokens[:, :int(used[-1]) + 1] if used.size else tokens

    def _normalise(self, views: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 on the host -> normalised float32 on the device."""
        views = self.cast_data(views).float()
        return (views - self.mean) / self.std
