"""MaskCLIP-style masked self-distillation."""
from typing import Dict, Optional, Sequence

from torch import Tensor

from detailclip.registry import MODELS
from .ibot import IBOTObjective


@MODELS.register_module()
class MaskedDistillationObjective(IBOTObjective):
    """Masked self-distillation of MaskCLIP (Dong et al., arXiv 2208.12262; docs/methods.md 5, a re-implementation: the
    paper's code was never released).

    A masked student view goes through a small decoder (mask tokens at the removed positions); its patch outputs are
    distilled into the EMA teacher's tokens of the same, full view with iBOT's centred, sharpened patch
    cross-entropy at the removed positions (one head, with its copy in the teacher, as in iBOT).

    Args:
        decoder (dict): :class:`MAEDecoder` config (``type`` may be omitted).
        head (dict): :class:`IBOTHead` config.
        loss (dict, optional): :class:`IBOTLoss` options.
        weight (float): Weight of ``loss_msd``.
        views (Sequence[int]): The masked student views.
        teacher_views (Sequence[int]): The teacher view paired with each of ``views`` (the same image, unmasked).
    """

    requires: Sequence[str] = ()  # decodes its own views

    def __init__(self, decoder: dict, head: dict, loss: Optional[dict] = None, weight: float = 1.0,
                 views: Sequence[int] = (1, ), teacher_views: Sequence[int] = (0, )):
        super().__init__(head, loss, cls_weight=0.0, patch_weight=weight, patch_source='decoder', views=views,
                         teacher_views=teacher_views)
        self.decoder = MODELS.build({'type': 'MAEDecoder', **decoder})

    def forward(self, context: dict, teacher_copies: dict) -> Dict[str, Tensor]:
        masked_only = self.patch_positions == 'masked'
        decoded = [None] * len(context['views'])
        for v in self.views:
            decoded[v] = self.decoder(context['image_tokens'][v], context['ids_keep'][v], context['grid_sizes'][v],
                                      removed_only=masked_only)
        losses = super().forward({**context, 'decoded_masked' if masked_only else 'decoded': decoded}, teacher_copies)
        return dict(loss_msd=losses['loss_ibot_patch'])
