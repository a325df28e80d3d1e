"""The contrastive image-text objective."""
from typing import Dict, Optional, Sequence

import torch

from detailclip.registry import MODELS
from .base import Objective


@MODELS.register_module()
class CLIPObjective(Objective):
    """InfoNCE between every student view and the caption (CLIP arXiv 2103.00020).

    With several views (A-CLIP, DetailCLIP) the loss is the weighted mean of per-view terms, and the text
    embeddings are gathered once. Reads ``image_embeds`` (V, B, d), ``text_embeds`` (B, d) and ``logit_scale``
    from the pretrainer's context.

    Args:
        loss (dict): Loss config, ``CLIPInfoNCELoss`` (``gather_with_grad``, ``view_weights``).
        weight (float): Weight of ``loss_clip`` in the total loss.
        views (Sequence[int], optional): Student views to use (all when None; SLIP: only the CLIP view).
    """

    def __init__(self, loss: dict = dict(type='CLIPInfoNCELoss'), weight: float = 1.0,
                 views: Optional[Sequence[int]] = None):
        super().__init__()
        self.loss = MODELS.build(loss)
        self.weight = weight
        self.views = None if views is None else list(views)

    def forward(self, context: dict, teacher_copies: dict) -> Dict[str, torch.Tensor]:
        image_embeds = context['image_embeds']
        if self.views is not None:  # (a list index would be uploaded to the GPU, a blocking copy)
            image_embeds = torch.stack([image_embeds[v] for v in self.views])
        loss, acc, per_view = self.loss(image_embeds, context['text_embeds'], context['logit_scale'])
        out = dict(loss_clip=self.weight * loss, clip_acc=acc)
        if len(per_view) > 1:  # per-view terms, logged only (no "loss" in the key: MMEngine would sum them)
            out.update({f'clip_view{v}': term for v, term in enumerate(per_view)})
        return out
