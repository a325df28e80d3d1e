"""Running several views through one encoder call."""
from typing import Dict, List, Optional, Sequence

import torch


def encode_views(encoder, views: Sequence[torch.Tensor], masks: Optional[Sequence[Optional[torch.Tensor]]] = None,
                 mask_mode: str = 'remove', return_cls_attn: bool = False) -> List[Dict[str, torch.Tensor]]:
    """``encoder.forward_encoder`` on every view, batching views that can share a call.

    Views of the same size whose masks keep the same number of tokens (or are all None) are concatenated along the
    batch, so two DetailCLIP views cost one (2B)-sample pass instead of two B-sample passes.

    Args:
        encoder: A :class:`VisionTransformer`.
        views (Sequence[Tensor]): V views, each (B, 3, H, W).
        masks (Sequence[Tensor | None], optional): Per view, a (B, N) bool mask (True = removed/replaced) or None.
        mask_mode (str): ``'remove'`` or ``'replace'``.
        return_cls_attn (bool): Also return the CLS attention score (B, N_keep).

    Returns:
        list[dict]: Per view, ``forward_encoder``'s outputs (``tokens`` (B, 1 + N_keep, D), ``ids_keep``, ``cls_attn``).
    """
    if mask_mode not in ('remove', 'replace'):
        raise ValueError(f'unknown mask_mode {mask_mode!r}: use "remove" or "replace"')
    masks = list(masks) if masks is not None else [None] * len(views)
    groups: Dict[tuple, List[int]] = {}
    for i, (view, mask) in enumerate(zip(views, masks)):
        kept = None if mask is None else int(mask.shape[1] - mask[0].sum()) if mask_mode == 'remove' else -1
        groups.setdefault((tuple(view.shape[1:]), mask is None, kept), []).append(i)
    outputs = [None] * len(views)
    for indices in groups.values():
        x = torch.cat([views[i] for i in indices])
        mask = None if masks[indices[0]] is None else torch.cat([masks[i] for i in indices])
        kwargs = {f'{mask_mode}_mask': mask} if mask is not None else {}
        out = encoder.forward_encoder(x, return_cls_attn=return_cls_attn, **kwargs)
        chunks = {k: (v.chunk(len(indices)) if v is not None else [None] * len(indices)) for k, v in out.items()}
        for j, i in enumerate(indices):
            outputs[i] = {k: c[j] for k, c in chunks.items()}
    return outputs
