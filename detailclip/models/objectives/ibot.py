"""iBOT's self-distillation objective: CLS and masked-patch terms (also DetailCLIP's)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from detailclip.registry import MODELS
from ..heads.ibot_head import IBOTHead
from ..losses.ibot_loss import IBOTLoss
from ..maskers.ops import select_masked
from .base import Objective, select


@MODELS.register_module()
class IBOTObjective(Objective):
    """iBOT self-distillation (Zhou et al., arXiv 2111.07832); DetailCLIP's variant (docs/methods.md 7.3).

    Student view ``views[i]`` pairs with teacher view ``teacher_views[i]`` (positions beyond the teacher list are
    student-only crops). The student head runs on the encoder CLS token of every view and on the patch tokens of each
    paired view that has a mask; the teacher's copy of the head (``teacher_copies['head']``) runs on the paired
    teacher views without grad. :class:`IBOTLoss` then takes the cross-view CLS term and the same-view masked patch
    term. Patch tokens come from the encoder (iBOT: mask-token replacement keeps all N patches in order) or from the
    MAE decoder output that an earlier objective published as ``context['decoded_masked']`` or
    ``context['decoded']`` (DetailCLIP: token removal). The student head runs only on the masked patch tokens, the
    only ones the loss reads (its MLP on all of them with ``patch_positions='all'``); the teacher head's MLP runs on
    all of them (its centre is the mean over every patch) and its prototype layer on the masked ones and their mean
    embedding. Same-shaped views go through a head in one call.

    Args:
        head (dict): :class:`IBOTHead` config (``type`` may be omitted); ``in_dim`` is the encoder width.
        loss (dict, optional): :class:`IBOTLoss` options (``type`` may be omitted); ``out_dim`` and
            ``patch_out_dim`` default to the head's.
        cls_weight (float): Weight of ``loss_ibot_cls``.
        patch_weight (float): Weight of ``loss_ibot_patch``.
        patch_source (str): ``'encoder'`` or ``'decoder'``.
        views (Sequence[int], optional): Student views, teacher-paired ones first (all when None).
        teacher_views (Sequence[int], optional): Teacher views (all when None).
        patch_positions (str): The student head's MLP on the patch tokens at the ``'masked'`` positions only, or on
            ``'all'`` of them, which a BatchNorm head needs (its statistics span the tokens it sees); the prototype
            layer and the loss take the masked positions either way, so the loss is the same.
    """

    needs_teacher = True
    teacher_modules = ('head', )

    def __init__(self, head: dict, loss: Optional[dict] = None, cls_weight: float = 1.0,
                 patch_weight: float = 1.0, patch_source: str = 'encoder', views: Optional[Sequence[int]] = None,
                 teacher_views: Optional[Sequence[int]] = None, patch_positions: str = 'masked'):
        super().__init__()
        if patch_source not in ('encoder', 'decoder'):
            raise ValueError(f'unknown patch_source {patch_source!r}: use "encoder" or "decoder"')
        if patch_positions not in ('masked', 'all'):
            raise ValueError(f'unknown patch_positions {patch_positions!r}: use "masked" or "all"')
        self.head = MODELS.build({'type': IBOTHead, **head})
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.head.modules())
        if patch_positions == 'masked' and has_bn:
            raise ValueError('patch_positions="masked" would change the batch statistics of a BatchNorm head: '
                             'set patch_positions="all"')
        self.patch_positions = patch_positions
        self.loss = MODELS.build({'type': IBOTLoss, 'out_dim': self.head.out_dim,
                                  'patch_out_dim': self.head.patch_out_dim, **(loss or {})})
        self.cls_weight, self.patch_weight = cls_weight, patch_weight
        self.patch_source = patch_source
        self.views = None if views is None else list(views)
        self.teacher_views = None if teacher_views is None else list(teacher_views)

    @property
    def requires(self) -> Tuple[str, ...]:
        """The MAE decoder outputs when the patch tokens come from it: at the masked positions only
        (``'decoded_masked'``, for ``patch_positions='masked'``) or at all of them (``'decoded'``)."""
        if self.patch_source != 'decoder':
            return ()
        return ('decoded_masked', ) if self.patch_positions == 'masked' else ('decoded', )

    def set_teacher_temp(self, **temps: float) -> None:
        """Teacher temperatures ``cls`` and ``patch``, see :meth:`IBOTLoss.set_teacher_temp`."""
        self.loss.set_teacher_temp(**temps)

    def forward(self, context: dict, teacher_copies: dict) -> Dict[str, Tensor]:
        student = select(range(len(context['views'])), self.views)
        teacher = select(range(len(context['teacher']['tokens'])), self.teacher_views)
        if len(teacher) > len(student):
            raise ValueError(f'IBOTObjective: {len(teacher)} teacher views but only {len(student)} student views')
        pairs = [i for i in range(len(teacher)) if context['masks'][student[i]] is not None]
        teacher_tokens, paired = context['teacher']['tokens'], [student[i] for i in pairs]
        masks = torch.stack([context['masks'][v] for v in paired]) if pairs else None  # (P, B, N)
        num_masked = common_count(context, paired)
        student_cls = self.head.forward_views([t[:, 0] for t in select(context['image_tokens'], student)])
        student_patch = self._student_patch_logits(context, paired, masks, num_masked) if pairs else None
        with torch.no_grad():
            teacher_head = teacher_copies['head']
            teacher_cls = teacher_head.forward_views([t[:, 0] for t in select(teacher_tokens, teacher)])
            teacher_patch = teacher_mean = None
            if pairs:
                teacher_patch, teacher_mean = self._teacher_patch_logits(
                    teacher_head, [teacher_tokens[teacher[i]][:, 1:] for i in pairs], masks, num_masked)
        loss_cls, loss_patch = self.loss(student_cls, student_patch, teacher_cls, teacher_patch, masks, teacher_mean)
        return dict(loss_ibot_cls=self.cls_weight * loss_cls, loss_ibot_patch=self.patch_weight * loss_patch)

    def _teacher_patch_logits(self, head: IBOTHead, tokens: List[Tensor], masks: Tensor,
                              num_masked: Optional[int]) -> Tuple[Tensor, Tensor]:
        """Teacher patch logits of the P paired views' (B, N, D) ``tokens`` at the ``masks`` (P, B, N) positions,
        (M, K2), and their (K2, ) mean over every position (the centre's input, from the mean embedding: the
        prototype layer is linear without bias)."""
        embedded, masked = masked_patch_logits(head, tokens, masks, num_masked)
        mean = embedded.flatten(0, -2).mean(0, dtype=torch.promote_types(embedded.dtype, torch.float32))
        return masked, head.prototypes(mean, patch=True)

    def _student_patch_logits(self, context: dict, views: Sequence[int], masks: Tensor,
                              num_masked: Optional[int]) -> Tensor:
        """Student patch logits (M, K2) of the masked ``views`` at the ``masks`` (P, B, N) positions, in their order."""
        if self.patch_positions == 'all':
            return masked_patch_logits(self.head, [self._patch_tokens(context, v) for v in views], masks,
                                       num_masked)[1]
        return self.head(torch.cat([self._masked_patch_tokens(context, v) for v in views]), patch=True)

    def _masked_patch_tokens(self, context: dict, view: int) -> Tensor:
        """(M, D) student tokens at the masked positions of ``view`` in ``masks`` order, from the encoder or the
        decoder outputs at the removed positions (``context['decoded_masked']``)."""
        if self.patch_source == 'encoder':
            return select_masked(self._patch_tokens(context, view), context['masks'][view],
                                 common_count(context, [view]))
        tokens = self._decoded(context, 'decoded_masked', view)  # (B, N_rem, D), ascending positions
        if tokens.dim() != 3 or tokens.shape[-1] != self.head.in_dim:
            raise ValueError(f'IBOTObjective: view {view} has decoder tokens {tuple(tokens.shape)} at the removed '
                             f'positions, expected (B, N_rem, {self.head.in_dim})')
        return tokens.flatten(0, 1)

    def _patch_tokens(self, context: dict, view: int) -> Tensor:
        """(B, N, D) student tokens at every patch position of ``view``, from the encoder or the decoder."""
        num_patches = context['masks'][view].shape[1]
        if self.patch_source == 'decoder':
            tokens = self._decoded(context, 'decoded', view)[:, 1:]
        else:
            tokens = context['image_tokens'][view][:, 1:]
        if tokens.shape[1] != num_patches or tokens.shape[-1] != self.head.in_dim:
            raise ValueError(f'IBOTObjective: view {view} has {self.patch_source} patch tokens {tuple(tokens.shape)}, '
                             f'expected (B, {num_patches}, {self.head.in_dim}); patch_source="encoder" needs all '
                             f'patches (mask_mode "replace"), with token removal use "decoder"')
        return tokens

    @staticmethod
    def _decoded(context: dict, key: str, view: int) -> Tensor:
        """The decoder outputs ``context[key][view]`` an earlier objective published."""
        decoded: List[Optional[Tensor]] = context.get(key) or [None] * len(context['views'])
        if decoded[view] is None:
            positions = 'masked' if key == 'decoded_masked' else 'all'
            raise ValueError(f'IBOTObjective(patch_source="decoder") needs context["{key}"][{view}]: list an '
                             f'objective that publishes MAE decoder outputs before it, e.g. '
                             f'MAEObjective(decode_positions="{positions}") for patch_positions="{positions}"')
        return decoded[view]


def masked_patch_logits(head: IBOTHead, tokens: List[Tensor], masks: Tensor,
                        num_masked: Optional[int]) -> Tuple[Tensor, Tensor]:
    """The P views' (B, N, D) ``tokens`` through the head's MLP in one call (a BatchNorm head normalises over every
    position): their (P, B, N, bottleneck) embeddings, and the (M, K2) patch logits at the ``masks`` (P, B, N)
    positions (``num_masked`` per row when known)."""
    embedded = head.embed(torch.stack(tokens))
    return embedded, head.prototypes(select_masked(embedded, masks, num_masked), patch=True)


def common_count(context: dict, views: Sequence[int]) -> Optional[int]:
    """The masked-token count of every row of the ``views``' masks when their masker fixes one count for all of them
    (``context['num_masked']``), else None."""
    counts = {(context.get('num_masked') or [None] * len(context['masks']))[v] for v in views}
    return counts.pop() if len(counts) == 1 else None
