"""DINO's self-distillation objective: the CLS term over multi-crop views."""
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from detailclip.registry import MODELS
from ..heads.ibot_head import DINOHead
from ..losses.ibot_loss import DINOLoss
from .base import Objective, select


@MODELS.register_module()
class DINOObjective(Objective):
    """DINO CLS self-distillation over multi-crop views (Caron et al., arXiv 2104.14294; docs/methods.md 8.2).

    The student head runs on the CLS token of every student view, the teacher's copy of the head on the global
    views; each teacher global view q is compared with every student view but q.

    Args:
        head (dict): :class:`DINOHead` config (``type`` may be omitted).
        loss (dict, optional): :class:`DINOLoss` options (``type`` may be omitted); ``out_dim`` defaults to the
            head's.
        weight (float): Weight of ``loss_dino``.
        global_views (Sequence[int]): Indices of the global crops, both among the student views and the teacher views.
    """

    needs_teacher = True
    teacher_modules = ('head', )

    def __init__(self, head: dict, loss: Optional[dict] = None, weight: float = 1.0,
                 global_views: Sequence[int] = (0, 1)):
        super().__init__()
        self.head = MODELS.build({'type': DINOHead, **head})
        self.loss = MODELS.build({'type': DINOLoss, 'out_dim': self.head.out_dim, **(loss or {})})
        self.weight = weight
        self.global_views = list(global_views)

    def set_teacher_temp(self, **temps: float) -> None:
        """Teacher temperature ``cls``, see :meth:`DINOLoss.set_teacher_temp`."""
        self.loss.set_teacher_temp(**temps)

    def forward(self, context: dict, teacher_copies: dict) -> Dict[str, Tensor]:
        tokens = context['image_tokens']
        # DINOLoss pairs teacher view q with student view q: the global crops go first.
        order = self.global_views + [v for v in range(len(tokens)) if v not in self.global_views]
        student_cls = self.head.forward_views([t[:, 0] for t in select(tokens, order)])  # (V, B, K)
        with torch.no_grad():
            teacher_tokens = select(context['teacher']['tokens'], self.global_views)
            teacher_cls = teacher_copies['head'].forward_views([t[:, 0] for t in teacher_tokens])
        return dict(loss_dino=self.weight * self.loss(student_cls, teacher_cls))
