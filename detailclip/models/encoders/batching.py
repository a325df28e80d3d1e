"""Running several views through one module call."""
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence

import torch


def run_batched(fn: Callable, inputs: Sequence[tuple], keys: Sequence[Hashable], batch: bool = True) -> list:
    """``fn(*inputs[i])`` for every view i, one call per group of views that share a key.

    The views of a group are concatenated along dim 0 of every tensor input (other inputs, e.g. ``None``, must be equal
    within a group and are passed once) and the output (a tensor, None, or a tuple/list/dict of them) is split back,
    so V same-shaped views of batch B cost one (V B)-sample call. With ``batch=False`` every view gets its own call
    (the reference's way).

    Args:
        fn: The module call.
        inputs: Per view, the positional arguments of ``fn``, at least one a (B, ...) tensor.
        keys: Per view, a key that is equal only for views whose inputs can be concatenated.
        batch: Group views by key; False: one call per view.

    Returns:
        list: Per view, ``fn``'s output for that view.
    """
    groups: Dict[Hashable, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key if batch else i, []).append(i)
    outputs: List[Any] = [None] * len(inputs)
    for indices in groups.values():
        args = [_cat([inputs[i][a] for i in indices]) for a in range(len(inputs[indices[0]]))]
        sizes = [next(x for x in inputs[i] if isinstance(x, torch.Tensor)).shape[0] for i in indices]
        for i, out in zip(indices, _split(fn(*args), sizes)):
            outputs[i] = out
    return outputs


def _cat(values: list):
    """Concatenate tensors along dim 0; None (or any non-tensor, which must then be the same for all) passes."""
    return torch.cat(values) if isinstance(values[0], torch.Tensor) else values[0]


def _split(out, sizes: List[int]) -> list:
    """Split a batched output (tensor, None, tuple/list/dict of them) along dim 0 into chunks of ``sizes``."""
    if out is None:
        return [None] * len(sizes)
    if isinstance(out, torch.Tensor):
        return list(out.split(sizes))
    if isinstance(out, dict):
        parts = {k: _split(v, sizes) for k, v in out.items()}
        return [{k: p[j] for k, p in parts.items()} for j in range(len(sizes))]
    return [type(out)(p) for p in zip(*[_split(v, sizes) for v in out])]


def encode_views(encoder, views: Sequence[torch.Tensor], masks: Optional[Sequence[Optional[torch.Tensor]]] = None,
                 mask_mode: str = 'remove', return_cls_attn: bool = False, batch: bool = True,
                 num_masked: Optional[Sequence[Optional[int]]] = None) -> List[Dict[str, torch.Tensor]]:
    """``encoder.forward_encoder`` on every view, batching views that can share a call.

    Views of the same size whose masks keep the same number of tokens (or are all None) are concatenated along the
    batch, so two DetailCLIP views cost one (2B)-sample pass instead of two B-sample passes.

    Args:
        encoder: A :class:`VisionTransformer`.
        views (Sequence[Tensor]): V views, each (B, 3, H, W).
        masks (Sequence[Tensor | None], optional): Per view, a (B, N) bool mask (True = removed/replaced) or None.
        mask_mode (str): ``'remove'`` or ``'replace'``.
        return_cls_attn (bool): Also return the CLS attention score (B, N_keep).
        batch (bool): Batch views that can share a call; False: one pass per view (the reference's way).
        num_masked (Sequence[int | None], optional): Per view, the tokens every row of its mask masks, when known
            (the masker's ``num_masked``); the others are read from the masks (a host-device sync on a GPU).

    Returns:
        list[dict]: Per view, ``forward_encoder``'s outputs (``tokens`` (B, 1 + N_keep, D), ``ids_keep``, ``cls_attn``).
    """
    if mask_mode not in ('remove', 'replace'):
        raise ValueError(f'unknown mask_mode {mask_mode!r}: use "remove" or "replace"')
    masks = list(masks) if masks is not None else [None] * len(views)
    counts = list(num_masked) if num_masked is not None else [None] * len(views)
    keys = [(tuple(view.shape[1:]), mask is None, _removed_count(mask, count, mask_mode))
            for view, mask, count in zip(views, masks, counts)]

    def encode(x: torch.Tensor, mask: Optional[torch.Tensor], count: Optional[int]) -> Dict[str, torch.Tensor]:
        if mask is None:
            return encoder.forward_encoder(x, return_cls_attn=return_cls_attn)
        if mask_mode == 'replace':
            return encoder.forward_encoder(x, replace_mask=mask, return_cls_attn=return_cls_attn)
        return encoder.forward_encoder(x, remove_mask=mask, num_removed=count, return_cls_attn=return_cls_attn)

    return run_batched(encode, list(zip(views, masks, counts)), keys, batch)


def _removed_count(mask: Optional[torch.Tensor], count: Optional[int], mask_mode: str) -> Optional[int]:
    """The tokens a view's removal drops per row (the part of its batching key the mask decides): ``count`` when
    known, else read from the mask's first row; None without removal."""
    if mask is None or mask_mode != 'remove':
        return None
    return count if count is not None else int(mask[0].sum())
