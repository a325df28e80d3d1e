"""Running several views through one module call."""
from typing import Any, Callable, Dict, Hashable, List, Sequence

import torch


def run_batched(fn: Callable, inputs: Sequence[tuple], keys: Sequence[Hashable]) -> list:
    """``fn(*inputs[i])`` for every view i, one call per group of views that share a key.

    The views of a group are concatenated along dim 0 of every tensor input (other inputs, e.g. ``None``, must be equal
    within a group and are passed once) and the output (a tensor, None, or a tuple/list/dict of them) is split back,
    so V same-shaped views of batch B cost one (V B)-sample call.

    Args:
        fn: The module call.
        inputs: Per view, the positional arguments of ``fn``, at least one a (B, ...) tensor.
        keys: Per view, a key that is equal only for views whose inputs can be concatenated.

    Returns:
        list: Per view, ``fn``'s output for that view.
    """
    groups: Dict[Hashable, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
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
