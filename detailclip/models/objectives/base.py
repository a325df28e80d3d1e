"""What every objective reads and returns.

An objective is a registered ``nn.Module`` that owns its heads and its loss; :class:`ImageTextPretrainer` calls
``objective(context, teacher_copies)`` for each configured objective, in config order, and sums the returned
``loss_*`` terms.

``context`` (a dict; masks use the project-wide convention True = removed / predicted):

================  ==================================================================================================
``views``          list of V student views, each (B, 3, H, W) normalised (views may differ in size: multi-crop)
``teacher_views``  list of the views the teacher sees (the student views unless the pipeline gives its own)
``boxes``          (B, V + V_t, 4) crop boxes (top, left, height, width) in source pixels, or None
``data_samples``   the batch's data samples (labels for supervised objectives)
``teacher``        None, or dict(tokens=[(B, 1 + N, D) per teacher view] after the final norm,
                   cls_attn=[(B, N) per teacher view]): the EMA teacher's outputs, computed without grad
``masks``          list (per student view) of (B, N) bool or None; ``mask_mode`` is 'remove' or 'replace'
``num_masked``     list (per student view) of the True count of every row of its mask when the masker fixes it,
                   else None: with it, selecting the masked tokens reads nothing back to the host
``image_tokens``   list (per student view) of (B, 1 + N_keep, D) encoder tokens after the final norm
``ids_keep``       list (per student view) of (B, N_keep) kept patch indices (ascending) or None (nothing removed)
``image_embeds``   (V, B, d) projected CLS embeddings (text methods only)
``text_embeds``    (B, d) projected caption embeddings; ``logit_scale``: the 0-d multiplier exp(t)
================  ==================================================================================================

Objectives may add entries for later ones (``decoded_masked``: the MAE decoder's (B, N_rem, D_dec) outputs at the
removed positions per view, or ``decoded``: its (B, 1 + N, D_dec) outputs at every position, read by iBOT's patch term
in DetailCLIP). They declare it (``provides``/``requires``) and :func:`execution_order` runs providers
first, so the order does not depend on the config's key order (MMEngine sorts dict keys when it dumps a config).

``teacher_copies`` maps each name in the objective's ``teacher_modules`` to the teacher's frozen copy of that
submodule (e.g. the teacher's iBOT head), or is empty when the method has no teacher.
"""
from typing import Dict, List, Sequence

import torch
from torch import nn


class Objective(nn.Module):
    """Base class: declares what the objective needs from the pretrainer.

    Attributes:
        needs_teacher (bool): The EMA teacher must run on ``teacher_views`` for this objective.
        teacher_modules (tuple[str]): Names of submodules the teacher keeps a copy of (passed back as
            ``teacher_copies``).
        provides (tuple[str]): Context entries this objective adds for later ones.
        requires (tuple[str]): Context entries an earlier objective must add.
    """

    needs_teacher = False
    teacher_modules: Sequence[str] = ()
    provides: Sequence[str] = ()
    requires: Sequence[str] = ()

    def forward(self, context: dict, teacher_copies: Dict[str, nn.Module]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


def select(items: Sequence, indices: Sequence[int] = None) -> list:
    """``items`` at ``indices`` (all of them when None): how an objective picks the views it uses."""
    return list(items) if indices is None else [items[i] for i in indices]


def execution_order(objectives: Dict[str, Objective]) -> List[str]:
    """The objective names with every provider of a context entry before its readers, otherwise in the given order.

    Raises:
        ValueError: An objective requires an entry no other objective provides.
    """
    pending, order, available = dict(objectives), [], set()
    while pending:
        ready = [n for n, o in pending.items() if set(o.requires) <= available]
        if not ready:
            missing = {n: sorted(set(o.requires) - available) for n, o in pending.items()}
            raise ValueError(f'objectives {missing} need context entries no objective provides: add the objective '
                             'that publishes them (e.g. MAEObjective(decode_positions="masked") for "decoded_masked", '
                             '"all" for "decoded")')
        order.append(ready[0])
        available.update(pending.pop(ready[0]).provides)
    return order
