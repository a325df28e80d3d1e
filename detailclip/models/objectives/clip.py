"""The contrastive image-text objective."""
from typing import Dict

import torch
from torch import nn

from detailclip.registry import MODELS


@MODELS.register_module()
class CLIPObjective(nn.Module):
    """InfoNCE between every student view and the caption (CLIP arXiv 2103.00020).

    With several views (A-CLIP, DetailCLIP) the loss is the weighted mean of per-view terms, and the text
    embeddings are gathered once. Reads ``image_embeds`` (V, B, d), ``text_embeds`` (B, d) and ``logit_scale``
    from the pretrainer's context.

    Args:
        loss (dict): Loss config, ``CLIPInfoNCELoss`` (``gather_with_grad``, ``view_weights``).
        weight (float): Weight of ``loss_clip`` in the total loss.
    """

    def __init__(self, loss: dict = dict(type='CLIPInfoNCELoss'), weight: float = 1.0):
        super().__init__()
        self.loss = MODELS.build(loss)
        self.weight = weight

    def forward(self, context: dict) -> Dict[str, torch.Tensor]:
        loss, acc = self.loss(context['image_embeds'], context['text_embeds'], context['logit_scale'])
        return dict(loss_clip=self.weight * loss, clip_acc=acc)
