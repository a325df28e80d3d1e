"""Image-only self-supervised objectives on the encoder's CLS token: SimCLR (SLIP, A-CLIP) and BYOL (A-CLIP)."""
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from detailclip.registry import MODELS
from ..losses.ssl_losses import BYOLLoss
from .base import Objective, select


def _cls_tokens(context: dict, views: Sequence[int]) -> List[Tensor]:
    """The final-norm CLS token (B, D) of each chosen student view."""
    return [tokens[:, 0] for tokens in select(context['image_tokens'], views)]


@MODELS.register_module()
class SimCLRObjective(Objective):
    """SimCLR between two student views (SLIP arXiv 2112.12750, A-CLIP arXiv 2212.08653; docs/methods.md 4, 6.5).

    u_k = head(CLS of view k) for the two chosen views, then ``loss_simclr = weight * SimCLRLoss(u_1, u_2)``.

    Args:
        head (dict): Head config, SLIP's ``MLPHead(D, 4096, 256, num_layers=3)``.
        loss (dict): Loss config, ``SimCLRLoss``.
        weight (float): Weight of ``loss_simclr``.
        views (Sequence[int]): The two student views (SLIP: 1 and 2, view 0 feeds CLIP; A-CLIP: 0 and 1).
        same_view (bool): Reproduce A-CLIP's bug Q-A1: the first view's embedding is used twice, so the positive
            logit is always 1/tau and the term only spreads negatives.
        concat_views (bool): Run the head once on both views stacked (2B rows; A-CLIP), so its BatchNorm statistics
            cover both views, instead of once per view (B rows each; SLIP).
    """

    def __init__(self, head: dict, loss: dict = dict(type='SimCLRLoss', temperature=0.1), weight: float = 1.0,
                 views: Sequence[int] = (1, 2), same_view: bool = False, concat_views: bool = False):
        super().__init__()
        if len(views) != 2:
            raise ValueError(f'SimCLRObjective needs two views, got {views}')
        self.head = MODELS.build(head)
        self.loss = MODELS.build(loss)
        self.weight = weight
        self.views = list(views)
        self.same_view = same_view
        self.concat_views = concat_views

    def forward(self, context: dict, teacher_copies: Dict[str, torch.nn.Module]) -> Dict[str, Tensor]:
        cls = _cls_tokens(context, self.views)
        if self.concat_views:
            embeds = self.head(torch.cat(cls)).split([c.shape[0] for c in cls])
        else:
            embeds = [self.head(c) for c in cls]
        loss, acc = self.loss(embeds[0], embeds[0] if self.same_view else embeds[1])
        return dict(loss_simclr=self.weight * loss, ssl_acc=acc)


@MODELS.register_module()
class BYOLObjective(Objective):
    """BYOL from the EMA teacher's view to the student views (BYOL arXiv 2006.07733; A-CLIP, docs/methods.md 6.5).

    p_k = predictor(projector(CLS of student view k)), computed on all chosen views stacked (V*B rows, as A-CLIP
    does, so BatchNorm statistics cover every view); z = the teacher's projector(teacher CLS of ``teacher_view``)
    without gradient; ``loss_byol = weight * BYOLLoss(p, z)``.

    The teacher keeps a copy of the projector (``teacher_modules``). A-CLIP's teacher projector normalises with batch
    statistics: configure the teacher with ``bn_batch_stats=True`` (its BN running statistics are never averaged,
    so in eval mode they would stay at their initial values).

    Args:
        projector (dict): Projector config, A-CLIP's ``MLPHead(D, 4096, 256, num_layers=2, bias=False)``.
        predictor (dict): Predictor config, A-CLIP's ``MLPHead(256, 4096, 256, num_layers=2, bias=False)``.
        weight (float): Weight of ``loss_byol`` (2 in A-CLIP).
        views (Sequence[int]): Student views whose predictions regress the target.
        teacher_view (int): Index into the teacher's views of the one giving the target (A-CLIP: the enclosing
            crop, its only teacher view).
    """

    needs_teacher = True
    teacher_modules = ('projector', )

    def __init__(self, projector: dict, predictor: dict, weight: float = 2.0, views: Sequence[int] = (0, 1),
                 teacher_view: int = 0):
        super().__init__()
        self.projector = MODELS.build(projector)
        self.predictor = MODELS.build(predictor)
        self.loss = BYOLLoss()
        self.weight = weight
        self.views = list(views)
        self.teacher_view = teacher_view

    def forward(self, context: dict, teacher_copies: Dict[str, torch.nn.Module]) -> Dict[str, Tensor]:
        preds = self.predictor(self.projector(torch.cat(_cls_tokens(context, self.views))))  # (V*B, d)
        with torch.no_grad():
            target = teacher_copies['projector'](context['teacher']['tokens'][self.teacher_view][:, 0])  # (B, d)
        preds = preds.unflatten(0, (len(self.views), -1))  # (V, B, d)
        return dict(loss_byol=self.weight * self.loss(preds, target))
