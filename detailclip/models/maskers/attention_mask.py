"""Attention-guided masking from the EMA teacher's CLS attention (A-CLIP, DetailCLIP, AttMask)."""
from typing import Optional, Sequence, Tuple

import torch

from detailclip.registry import MODELS
from .base import Masker
from .ops import attention_mask, map_scores_exact, map_scores_grid_sample, num_attention_kept

BOX_MAPPINGS = {'exact': map_scores_exact, 'grid_sample': map_scores_grid_sample}


@MODELS.register_module()
class AttentionMask(Masker):
    """Block masking by the teacher's CLS attention: A-CLIP (arXiv 2212.08653), DetailCLIP (arXiv 2409.06809).

    The (B, N) score ``context['teacher']['cls_attn'][t]`` is averaged over block x block cells; the best cells are
    kept (:func:`~detailclip.models.maskers.ops.attention_mask`). DetailCLIP's teacher sees the student's own view
    (``teacher_view=None``: t = the student view's index). A-CLIP's teacher sees one enclosing crop
    (``teacher_view=0``), whose map is carried onto each student crop with ``box_mapping`` using
    ``context['boxes']`` (B, V + V_t, 4): student boxes first, then teacher boxes.

    Reference settings (both methods): ``ratio=0.5, block_size=2, keep='high', ratio_semantics='keep_plus_one'``;
    at ratio 0.5 both semantics keep 25 of 49 cells (100 of 196 tokens) on a 14 x 14 grid.

    Args:
        ratio (float): Masking ratio, read as ``ratio_semantics`` says.
        block_size (int): Cell side in tokens.
        keep (str): ``'high'`` keeps the most attended cells; ``'low'`` the least attended (hides the most attended).
        ratio_semantics (str): ``'remove'`` (remove round(C ratio) of C cells) or ``'keep_plus_one'`` (the
            references: keep floor(C ratio) + 1 cells).
        box_mapping (str, optional): None (the teacher map is on the student's own grid), ``'exact'`` (A-CLIP's
            resize-crop-resize, one sample at a time) or ``'grid_sample'`` (batched bilinear sampling).
        teacher_view (int, optional): Teacher view giving the scores; None: the student view's own index.
        mode (str): ``'remove'`` (token removal) or ``'replace'`` (mask token).
        apply_to (Sequence[int], optional): Student views to mask (all when None).
    """

    needs_teacher = True

    def __init__(self, ratio: float = 0.5, block_size: int = 2, keep: str = 'high', ratio_semantics: str = 'remove',
                 box_mapping: Optional[str] = None, teacher_view: Optional[int] = None, mode: str = 'remove',
                 apply_to: Optional[Sequence[int]] = None):
        super().__init__(apply_to)
        if keep not in ('high', 'low') or mode not in ('remove', 'replace'):
            raise ValueError(f'keep must be "high" or "low" and mode "remove" or "replace", got {keep!r}, {mode!r}')
        if box_mapping is not None and box_mapping not in BOX_MAPPINGS:
            raise ValueError(f'unknown box_mapping {box_mapping!r}: use None, "exact" or "grid_sample"')
        if not 0 <= ratio <= 1:
            raise ValueError(f'ratio must be in [0, 1], got {ratio}')
        if ratio_semantics not in ('remove', 'keep_plus_one'):
            raise ValueError(f'unknown ratio_semantics {ratio_semantics!r}: use "remove" or "keep_plus_one"')
        self.ratio, self.block_size, self.keep, self.ratio_semantics = ratio, block_size, keep, ratio_semantics
        self.box_mapping, self.teacher_view, self.mode = box_mapping, teacher_view, mode

    def mask_view(self, context: dict, view: int) -> torch.Tensor:
        """(B, N) bool, True = removed (or replaced); the same count in every row."""
        return attention_mask(self.scores(context, view), tuple(context['grid_sizes'][view]), self.ratio,
                              self.block_size, self.keep, self.ratio_semantics)

    def num_masked(self, context: dict, view: int) -> int:
        grid = tuple(context['grid_sizes'][view])
        return grid[0] * grid[1] - num_attention_kept(grid, self.ratio, self.block_size, self.ratio_semantics)

    def scores(self, context: dict, view: int) -> torch.Tensor:
        """(B, N) teacher CLS attention over student view ``view``'s tokens."""
        t = view if self.teacher_view is None else self.teacher_view
        scores = context['teacher']['cls_attn'][t]
        grid = tuple(context['grid_sizes'][view])
        if self.box_mapping is None:
            if scores.shape[1] != grid[0] * grid[1]:
                raise ValueError(f'teacher view {t} has {scores.shape[1]} tokens but student view {view} has a {grid} '
                                 'grid: set box_mapping to carry the map across crops')
            return scores
        if context.get('boxes') is None:
            raise ValueError('box_mapping needs context["boxes"] (B, V + V_t, 4): use a view pipeline giving boxes')
        boxes = context['boxes']
        return BOX_MAPPINGS[self.box_mapping](scores, _teacher_grid(context, view, t), grid, boxes[:, view],
                                              boxes[:, len(context['views']) + t])


def _teacher_grid(context: dict, view: int, teacher_view: int) -> Tuple[int, int]:
    """(gh_t, gw_t) of a teacher view, with the patch size read off student view ``view`` and its grid."""
    gh, gw = context['grid_sizes'][view]
    height, width = context['views'][view].shape[-2:]
    t_height, t_width = context['teacher_views'][teacher_view].shape[-2:]
    return t_height // (height // gh), t_width // (width // gw)


@MODELS.register_module()
class AttMask(AttentionMask):
    """AttMask (Kakogeorgiou et al., arXiv 2203.12719): hide the most attended tokens from a masked-image-modelling
    student, replacing them by the mask token.

    Exactly ``AttentionMask(keep='low', mode='replace', ...)``: keeping the least attended cells hides the most
    attended ones. Other arguments as :class:`AttentionMask` (the paper masks single tokens: ``block_size=1``).
    """

    def __init__(self, **kwargs):
        super().__init__(keep='low', mode='replace', **kwargs)
