"""Self-distillation losses with centred, sharpened teacher targets: DINO's CLS loss and iBOT's CLS + patch loss.

Notation: V student views, V_t <= V teacher views, teacher view q paired with student view q (so the student lists
its global views first); P same-view pairs for the patch term; B samples, N patches, K / K2 prototypes.
H(P, Q) = -sum_k P_k log Q_k is the cross-entropy of a teacher distribution P and student log-probabilities log Q.
The centres are registered buffers, so checkpoints keep them (docs/methods.md Q-D20); teacher temperatures are scheduled
by ``TeacherTempHook`` through ``set_teacher_temp``.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.registry import MODELS
from detailclip.utils.dist import all_reduce_mean


def _check_temp(name: str, value: float) -> float:
    """``value`` as a float, or a ValueError unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} temperature must be a finite number > 0, got {value!r}')
    return float(value)


def cross_view_ce(teacher_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """Mean over ordered pairs (q, v), q != v, of mean_b H(P_q, Q_v).

    Args:
        teacher_probs (Tensor): (V_t, B, K) teacher distributions.
        student_log_probs (Tensor): (V, B, K) student log-probabilities, V >= V_t.

    Returns:
        Tensor: () the loss.
    """
    num_teacher, num_student = teacher_probs.shape[0], student_log_probs.shape[0]
    if num_teacher > num_student or num_student < 2 or teacher_probs.shape[1:] != student_log_probs.shape[1:]:
        raise ValueError(f'cross-view loss: need teacher (V_t, B, K) and student (V, B, K) with 1 <= V_t <= V and '
                         f'V >= 2, got {tuple(teacher_probs.shape)} and {tuple(student_log_probs.shape)}')
    # One teacher view at a time: memory stays at one (V, B, K) product.
    ce = torch.stack([-(p * student_log_probs).sum(-1).mean(-1) for p in teacher_probs])  # (V_t, V)
    # the pairs q == v are the diagonal of (V_t, V), V_t <= V
    return (ce.sum() - ce.diagonal().sum()) / (num_teacher * (num_student - 1))


def masked_patch_mean(ce: Tensor, masks: Tensor) -> Tensor:
    """Mean over pairs and samples of sum_n M_n ce_n / max(1, sum_n M_n), given the masked positions' terms only.

    Args:
        ce (Tensor): (M,) per-position cross-entropies at the M masked positions, in ``masks`` order (``x[masks]``).
        masks (Tensor): (P, B, N) bool, True = masked (predicted).

    Returns:
        Tensor: () the loss (0 when nothing is masked).
    """
    counts = masks.flatten(0, 1).sum(-1)  # (P B,)
    # the (P B) row of each of the M terms; M = ce's length, so nothing is read back to the host
    rows = torch.repeat_interleave(torch.arange(len(counts), device=ce.device), counts, output_size=ce.shape[0])
    weights = counts.clamp(min=1).to(ce.dtype).reciprocal()[rows]  # (M,)
    return (ce * weights).sum() / (masks.shape[0] * masks.shape[1])


class SoftTargetCrossEntropy(torch.autograd.Function):
    """Row-wise H(softmax((T - c) / tau_t), softmax(S / tau_s)) that keeps one (M, K) tensor for backward.

    Autograd through softmax, log_softmax and the product would keep the teacher probabilities and the student
    log-probabilities (two (M, K) fp32 tensors) and make more in backward. Here the rows are processed in chunks (the
    teacher softmax never exists in full) and only dH/dS = (softmax(S / tau_s) * sum_k P_k - P) / tau_s is kept, in
    the dtype of S.
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, center: Tensor, teacher_temp: float,
                student_temp: float) -> Tensor:
        """(M, K) student logits S, (M, K) teacher logits T, (K,) centre c -> (M,) cross-entropies in fp32 (or
        wider, for float64 inputs)."""
        dtype = torch.promote_types(student.dtype, torch.float32)  # half logits: fp32 softmaxes, as autocast does
        ce = student.new_empty(student.shape[0], dtype=dtype)
        grad = torch.empty_like(student) if ctx.needs_input_grad[0] else None
        chunk = max(1, 2 ** 22 // student.shape[-1])  # rows per chunk: ~16 MB of fp32 temporaries each
        for start in range(0, student.shape[0], chunk):
            rows = slice(start, start + chunk)
            probs = F.softmax((teacher[rows].to(dtype) - center) / teacher_temp, dim=-1)
            log_q = F.log_softmax(student[rows].to(dtype) / student_temp, dim=-1)
            ce[rows] = -(probs * log_q).sum(-1)
            if grad is not None:
                grad[rows] = log_q.exp_().mul_(probs.sum(-1, keepdim=True)).sub_(probs).div_(student_temp)
        ctx.save_for_backward(grad)
        return ce

    @staticmethod
    def backward(ctx, grad_ce: Tensor):
        grad, = ctx.saved_tensors
        return (grad * grad_ce[:, None]).to(grad.dtype), None, None, None, None


@torch.no_grad()
def update_center(center: Tensor, teacher_logits: Tensor, momentum: float) -> None:
    """c <- m c + (1 - m) * (global batch mean of ``teacher_logits`` over every dim but the last), in place.

    Args:
        center (Tensor): (..., K) fp32 buffer.
        teacher_logits (Tensor): (..., K) logits; every rank must pass the same shape.
        momentum (float): m.
    """
    local_mean = teacher_logits.flatten(0, -2).mean(0, dtype=center.dtype)  # (K,), fp32 for half logits
    center.lerp_(all_reduce_mean(local_mean).view_as(center), 1.0 - momentum)


def _teacher_probs(logits: Tensor, center: Tensor, temp: float) -> Tensor:
    """softmax((T - c) / tau_t), without gradient."""
    return F.softmax((logits.detach() - center) / temp, dim=-1)


@MODELS.register_module()
class DINOLoss(nn.Module):
    """DINO CLS self-distillation (Caron et al., arXiv 2104.14294; docs/methods.md 8.2).

    L = mean over pairs (teacher global view q, student view v != q) of mean_b H(softmax((T_q - c)/tau_t),
    softmax(S_v/tau_s)); afterwards c <- m c + (1 - m) * global batch mean of T.

    Args:
        out_dim (int): K.
        student_temp (float): tau_s.
        center_momentum (float): m.
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9):
        super().__init__()
        self.student_temp = _check_temp('student', student_temp)
        self.center_momentum = center_momentum
        self.teacher_temp = 0.04
        self.register_buffer('center', torch.zeros(1, out_dim))

    def set_teacher_temp(self, cls: Optional[float] = None) -> None:
        """Set tau_t (left unchanged when None); DINO has no patch term, so there is no ``patch`` temperature."""
        if cls is not None:
            self.teacher_temp = _check_temp('cls teacher', cls)

    def forward(self, student_cls: Tensor, teacher_cls: Tensor) -> Tensor:
        """Compute the loss, then update the centre.

        Args:
            student_cls (Tensor): (V, B, K) student logits of all crops, teacher-paired global crops first.
            teacher_cls (Tensor): (V_t, B, K) teacher logits of the global crops.

        Returns:
            Tensor: () the loss.
        """
        log_q = F.log_softmax(student_cls / self.student_temp, dim=-1)
        loss = cross_view_ce(_teacher_probs(teacher_cls, self.center, self.teacher_temp), log_q)
        update_center(self.center, teacher_cls, self.center_momentum)
        return loss


@MODELS.register_module()
class IBOTLoss(nn.Module):
    """iBOT CLS + masked-patch self-distillation (Zhou et al., arXiv 2111.07832; DetailCLIP arXiv 2409.06809,
    docs/methods.md 7.5, 8.3).

    L_cls is :class:`DINOLoss`'s cross-view term with centre c (1, K) and tau_t; L_patch compares each student view
    with its own teacher view at the masked positions: mean over pairs p and samples b of
    sum_n M H(softmax((T_patch - c2)/tau_t2), softmax(S_patch/tau_s)) / max(1, sum_n M), with centre c2 (1, 1, K2).
    Only the masked positions enter the softmaxes, through :class:`SoftTargetCrossEntropy` (logits given at every
    position are reduced to those first). After the loss, c and c2 move towards the global batch means of T_cls and
    of the patch-mean of T_patch (all positions: passed as ``teacher_patch_mean`` when the teacher logits are given at
    the masked positions only). With a single view pair there is no cross-view pair and L_cls = 0.

    Args:
        out_dim (int): K.
        patch_out_dim (int): K2.
        student_temp (float): tau_s (both terms).
        cls_center_momentum (float): Momentum of c (buffer ``cls_center``).
        patch_center_momentum (float): Momentum of c2 (buffer ``patch_center``).
    """

    def __init__(self, out_dim: int, patch_out_dim: int, student_temp: float = 0.1,
                 cls_center_momentum: float = 0.9, patch_center_momentum: float = 0.9):
        super().__init__()
        self.student_temp = _check_temp('student', student_temp)
        self.cls_center_momentum, self.patch_center_momentum = cls_center_momentum, patch_center_momentum
        self.cls_teacher_temp, self.patch_teacher_temp = 0.04, 0.04
        self.register_buffer('cls_center', torch.zeros(1, out_dim))
        self.register_buffer('patch_center', torch.zeros(1, 1, patch_out_dim))

    def set_teacher_temp(self, cls: Optional[float] = None, patch: Optional[float] = None) -> None:
        """Set tau_t (``cls``) and tau_t2 (``patch``); None leaves a temperature unchanged."""
        if cls is not None:
            self.cls_teacher_temp = _check_temp('cls teacher', cls)
        if patch is not None:
            self.patch_teacher_temp = _check_temp('patch teacher', patch)

    def forward(self, student_cls: Tensor, student_patch: Optional[Tensor], teacher_cls: Tensor,
                teacher_patch: Optional[Tensor], masks: Optional[Tensor],
                teacher_patch_mean: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Compute both terms, then update the centres.

        Args:
            student_cls (Tensor): (V, B, K) student CLS logits, teacher-paired views first.
            student_patch (Tensor, optional): (M, K2) student logits of the M masked positions, in ``masks`` order
                (``x[masks]``), or (P, B, N, K2) of every position; None: no patch term.
            teacher_cls (Tensor): (V_t, B, K) teacher CLS logits.
            teacher_patch (Tensor, optional): (P, B, N, K2) teacher patch logits of the same P views, or (M, K2) at
                the masked positions only (with ``teacher_patch_mean``; the student's then too).
            masks (Tensor, optional): (P, B, N) bool, True = masked: where the patch term is taken.
            teacher_patch_mean (Tensor, optional): (K2, ) mean teacher patch logit over all P * B * N positions, for
                c2 when ``teacher_patch`` holds the masked positions only.

        Returns:
            tuple[Tensor, Tensor]: () L_cls and () L_patch.
        """
        loss_cls = self._cls_loss(student_cls, teacher_cls)
        loss_patch = student_cls.new_zeros(()) if student_patch is None else \
            self._patch_loss(student_patch, teacher_patch, masks, teacher_patch_mean)
        update_center(self.cls_center, teacher_cls, self.cls_center_momentum)
        if teacher_patch is not None:
            patch_logits = teacher_patch if teacher_patch_mean is None else teacher_patch_mean[None]
            update_center(self.patch_center, patch_logits, self.patch_center_momentum)
        return loss_cls, loss_patch

    def _cls_loss(self, student_cls: Tensor, teacher_cls: Tensor) -> Tensor:
        if student_cls.shape[0] == 1:
            return student_cls.new_zeros(())  # no cross-view pair
        log_q = F.log_softmax(student_cls / self.student_temp, dim=-1)
        return cross_view_ce(_teacher_probs(teacher_cls, self.cls_center, self.cls_teacher_temp), log_q)

    def _patch_loss(self, student_patch: Tensor, teacher_patch: Tensor, masks: Tensor,
                    teacher_patch_mean: Optional[Tensor]) -> Tensor:
        if not _patch_inputs_fit(student_patch, teacher_patch, masks, teacher_patch_mean):
            raise ValueError(f'patch term: need student logits (M, K2) or (P, B, N, K2), teacher logits (P, B, N, K2) '
                             f'(or (M, K2) with their (K2, ) mean over every position) and bool masks (P, B, N), got '
                             f'{_shape(student_patch)}, {_shape(teacher_patch)}, {_shape(teacher_patch_mean)} and '
                             f'{_shape(masks)}')
        student_masked, teacher_masked = (x if x.dim() == 2 else x[masks] for x in (student_patch, teacher_patch))
        if teacher_masked.shape[0] != student_masked.shape[0]:
            raise ValueError(f'patch term: {student_masked.shape[0]} student rows for {teacher_masked.shape[0]} masked '
                             f'positions: pass the student logits at the masked positions, x[masks]')
        ce = SoftTargetCrossEntropy.apply(student_masked, teacher_masked, self.patch_center.view(-1),
                                          self.patch_teacher_temp, self.student_temp)
        return masked_patch_mean(ce, masks)


def _patch_inputs_fit(student_patch: Tensor, teacher_patch: Optional[Tensor], masks: Optional[Tensor],
                      teacher_patch_mean: Optional[Tensor]) -> bool:
    """Bool masks (P, B, N) and either teacher (P, B, N, K2) with student (M, K2) or the teacher's shape, or teacher
    and student (M, K2) with the teacher's mean (K2, )."""
    if teacher_patch is None or masks is None or masks.dtype != torch.bool or masks.dim() != 3:
        return False
    if teacher_patch.dim() == 2:
        return (teacher_patch_mean is not None and teacher_patch_mean.shape == teacher_patch.shape[-1:]
                and student_patch.shape == teacher_patch.shape)
    if teacher_patch_mean is not None or masks.shape != teacher_patch.shape[:-1]:
        return False
    if student_patch.dim() == 4:
        return student_patch.shape == teacher_patch.shape
    return student_patch.dim() == 2 and student_patch.shape[-1] == teacher_patch.shape[-1]


def _shape(x: Optional[Tensor]) -> Optional[tuple]:
    return None if x is None else (*x.shape, x.dtype)
