"""The DetailCLIP reference's straightforward way of running a training step, behind one seam.

The model code has one implementation of each part, the optimised one. The benchmark's ``--naive`` runs and the
equivalence tests (tests/models/test_naive_equivalence.py: the same masks, losses, gradients, iBOT centres, EMA
teacher and optimizer update) build the reference's way from it: :func:`apply_naive` switches a built model in
place, :func:`naive_optimizer` the optimizer config.

(a) attention materialises softmax(q k^T) (student, teacher, decoder); (b) the teacher's CLS score stacks every
block's full attention (L, B, heads, T, T) and averages it (docs/methods.md Q-D4); (c) each view goes alone through
the teacher, the student, the decoder and the heads; (d) the EMA update loops over parameters; (e) the student iBOT
head runs on every patch token and the patch loss takes (P, B, N, K2) softmaxes, and the decoder's last block and the
pixel head run on every position; (f) the optimizer loops over parameters; (g) the transformer blocks store their
LayerNorm and activation outputs for backward; (j) captions run at full length, padding included.

Where the model has an option users choose ((a) ``attn_impl``, (e) ``patch_positions``/``decode_positions``,
(g) ``recompute_norm_act``, (j) ``trim_text_padding``), it is set to the reference's value. The rest swaps a module's
class for a subclass made of one of the mixins below and its own class: the mixin overrides one optimised method with
the reference's way; parameters, buffers and state-dict names stay the same.
"""
import functools
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.models.data_preprocessor import ImageTextDataPreprocessor
from detailclip.models.encoders.text import ResidualAttentionBlock
from detailclip.models.encoders.vit import CLSAttention, CLSAttentionBlock, VisionTransformer, set_attn_impl
from detailclip.models.heads.ibot_head import IBOTHead
from detailclip.models.heads.mae_decoder import MAEDecoder
from detailclip.models.losses.ibot_loss import IBOTLoss
from detailclip.models.objectives.ibot import IBOTObjective
from detailclip.models.objectives.mae import MAEObjective
from detailclip.models.teacher import EMATeacher


def one_view_at_a_time(forward_views: Callable, *per_view: Optional[Sequence], **options):
    """``forward_views`` called once per view, with each of the ``per_view`` lists (None passes) cut to that view's
    entry: the per-view outputs as one list, or, when they are tensors ((1, ...) each), concatenated to (V, ...)."""
    outs = [forward_views(*[None if arg is None else [arg[v]] for arg in per_view], **options)
            for v in range(len(per_view[0]))]
    return torch.cat(outs) if isinstance(outs[0], Tensor) else [out[0] for out in outs]


class OneViewAtATime:
    """(c) ``forward_views`` (encoder, decoder, head) with one call per view; the per-view lists are passed
    positionally."""

    def forward_views(self, *per_view: Optional[Sequence], **options):
        return one_view_at_a_time(super().forward_views, *per_view, **options)


class StackedCLSScore:
    """(b) the encoder's CLS score from every block's full attention, stacked."""

    def _run_blocks(self, x: Tensor, return_cls_attn: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """Tokens (B, T, D) through the blocks and, when asked, the reference's CLS score (B, T - 1): the blocks'
        (B, heads, T, T) attention (see :class:`FullAttentionForCLSScore`) stacked to (L, B, heads, T, T), averaged
        over blocks, its CLS row averaged over heads."""
        if not return_cls_attn:
            return super()._run_blocks(x, return_cls_attn)
        attns = []
        for blk in self.blocks:
            x, attn = self._run_block(blk, x, return_cls_attn=True)
            attns.append(attn)
        return x, torch.stack(attns).mean(dim=0)[:, :, 0, 1:].mean(dim=1)


class FullAttentionForCLSScore:
    """(b) the attention layer hands its whole materialised probabilities on instead of their CLS row."""

    def _cls_attn(self, q: Tensor, k: Tensor, attn: Tensor) -> Tensor:
        """The fp32 probabilities (B, heads, T, T) that timm's unfused path (``attn_impl='manual'``) materialised."""
        return attn.float()


class PatchLogitsAtEveryPosition:
    """(e) the iBOT student and teacher patch logits (P, B, N, K2) at every position, the head on one view at a
    time; the loss reads the masked ones (``patch_positions='all'``, so decoder tokens come at every position)."""

    def _student_patch_logits(self, context: dict, views: Sequence[int], masks: Tensor,
                              num_masked: Optional[int]) -> Tensor:
        return self.head.forward_views([self._patch_tokens(context, v) for v in views], patch=True)

    def _teacher_patch_logits(self, head: IBOTHead, tokens: Sequence[Tensor], masks: Tensor,
                              num_masked: Optional[int]) -> Tuple[Tensor, None]:
        return head.forward_views(tokens, patch=True), None


class PatchSoftmaxesAtEveryPosition:
    """(e) the iBOT patch term as the reference computes it: softmaxes over all (P, B, N, K2) logits, then the mean
    over the masked positions of each row."""

    def _patch_loss(self, student_patch: Tensor, teacher_patch: Tensor, masks: Tensor,
                    teacher_patch_mean: Optional[Tensor]) -> Tensor:
        probs = F.softmax((teacher_patch - self.patch_center) / self.patch_teacher_temp, dim=-1)
        ce = -(probs * F.log_softmax(student_patch / self.student_temp, dim=-1)).sum(-1)  # (P, B, N)
        weights = masks.to(ce.dtype)
        return ((ce * weights).sum(-1) / weights.sum(-1).clamp(min=1)).mean()


class ParameterLoopEMA:
    """(d) the EMA update as a Python loop over parameters."""

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        for teacher_param, student_param in zip(*self._paired_parameters(student)):
            teacher_param.mul_(momentum).add_(student_param, alpha=1.0 - momentum)


# The model classes whose instances (subclasses' too) get the mixins, in that order before their own class.
NAIVE_WAYS = {
    VisionTransformer: (StackedCLSScore, OneViewAtATime),
    CLSAttention: (FullAttentionForCLSScore, ),
    MAEDecoder: (OneViewAtATime, ),
    IBOTHead: (OneViewAtATime, ),
    IBOTObjective: (PatchLogitsAtEveryPosition, ),
    IBOTLoss: (PatchSoftmaxesAtEveryPosition, ),
    EMATeacher: (ParameterLoopEMA, ),
}


def apply_naive(model: nn.Module) -> nn.Module:
    """Switch every part of ``model`` (the teacher's copies included) to the reference's way, in place; returns it.
    Losses and gradients stay the same."""
    set_attn_impl(model, 'manual')
    for module in model.modules():
        _set_reference_options(module)
        for base, mixins in NAIVE_WAYS.items():
            if isinstance(module, base) and not isinstance(module, mixins[0]):
                module.__class__ = _naive_class(type(module), mixins)
    return model


def _set_reference_options(module: nn.Module) -> None:
    """(e), (g), (j): the options users choose, at the reference's setting."""
    if isinstance(module, IBOTObjective):
        module.patch_positions = 'all'
    elif isinstance(module, MAEObjective):
        module.decode_positions = 'all'
    elif isinstance(module, (CLSAttentionBlock, ResidualAttentionBlock)):
        module.recompute_norm_act = False
    elif isinstance(module, ImageTextDataPreprocessor):
        module.trim_text_padding = False


@functools.lru_cache(maxsize=None)
def _naive_class(cls: type, mixins: Tuple[type, ...]) -> type:
    """``cls`` with ``mixins`` before it, named ``Naive<cls>``."""
    return type(f'Naive{cls.__name__}', (*mixins, cls), {})


def naive_optimizer(optim_wrapper_cfg: dict) -> dict:
    """(f) The optim wrapper config with the optimizer's plain per-parameter loop (the torch 1.x default the
    reference ran), instead of the fused kernel the constructor picks."""
    return dict(optim_wrapper_cfg, optimizer=dict(optim_wrapper_cfg['optimizer'], foreach=False))
