"""Supervised classification on the encoder's CLS token: the DeiT-style supervised baseline."""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.registry import MODELS
from .base import Objective, select


@MODELS.register_module()
class SupervisedObjective(Objective):
    """Cross-entropy of a linear classifier on the final-norm CLS token (DeiT arXiv 2012.12877; ViT 2010.11929).

    Every chosen view is classified with its sample's label; the loss is the mean over all V*B rows. Labels are the
    ``gt_label`` of ``context['data_samples']`` (an int or a one-element tensor per sample).

    Args:
        num_classes (int): Number of classes.
        in_dim (int): Encoder width D.
        weight (float): Weight of ``loss_cls``.
        views (Sequence[int]): Student views to classify.
        label_smoothing (float): Label smoothing of the cross-entropy (DeiT: 0.1).
    """

    def __init__(self, num_classes: int, in_dim: int, weight: float = 1.0, views: Sequence[int] = (0, ),
                 label_smoothing: float = 0.0):
        super().__init__()
        self.head = nn.Linear(in_dim, num_classes)
        # timm's ViT head init
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        self.weight = weight
        self.views = list(views)
        self.label_smoothing = label_smoothing

    def forward(self, context: dict, teacher_copies: Dict[str, nn.Module]) -> Dict[str, Tensor]:
        tokens = select(context['image_tokens'], self.views)
        logits = self.head(torch.cat([t[:, 0] for t in tokens]))  # (V*B, num_classes)
        labels = _labels(context['data_samples'], logits.device).repeat(len(tokens))  # (V*B,)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            acc = (logits.argmax(dim=-1) == labels).float().mean() * 100
        return dict(loss_cls=self.weight * loss, cls_acc=acc)


def _labels(data_samples: Sequence, device: torch.device) -> Tensor:
    """(B,) long class indices; one host-to-device copy, no per-sample synchronisation."""
    return torch.stack([torch.as_tensor(s.gt_label).reshape(()) for s in data_samples]).to(device, torch.long)
