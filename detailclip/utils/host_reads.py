"""Finding the ops of a training step that read tensor values back to the host.

On a GPU each such read is a host-device synchronisation: the host waits until every queued kernel has run, and the
GPU then idles while the host queues the next ones. They come from ``.item()``/``bool(tensor)``/``int(tensor)``
(``aten._local_scalar_dense``) and from ops whose output shape depends on the data (boolean-mask indexing,
``nonzero``, ``masked_select``, ``unique``, ``repeat_interleave`` without ``output_size``) and from copies of device
tensors to the host (``.cpu()``, ``.tolist()``, ``.numpy()``). :class:`HostReads` sees them at the dispatcher, so it
finds them on a CPU too, where they cost nothing; there, what never dispatches is not seen: ``tolist()`` and
``numpy()`` of a CPU tensor, which on a GPU would be device-to-host copies.
"""
import os.path as osp
import traceback
from collections import Counter
from typing import Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_READS = frozenset({'_local_scalar_dense', 'nonzero', 'masked_select', 'unique_dim', '_unique', '_unique2',
                    'unique_consecutive', 'equal'})
_INDEXING = frozenset({'index', 'index_put', 'index_put_', '_index_put_impl_'})
_COPIES = frozenset({'_to_copy', 'copy_'})
_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_CODE = tuple(osp.join(_ROOT, folder) + osp.sep for folder in ('detailclip', 'tools', 'downstream'))


def reads_to_host(func, args: tuple, kwargs: dict) -> bool:
    """Whether the aten op ``func`` called with ``args``/``kwargs`` needs tensor values on the host."""
    name = func.overloadpacket.__name__
    if name in _READS:
        return True
    if name in _INDEXING:
        indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices)
    if name in _COPIES:
        return _device_to_host(name, args, kwargs)
    return func is torch.ops.aten.repeat_interleave.Tensor and kwargs.get('output_size') is None


def _device_to_host(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether the copy op ``name`` moves a tensor from an accelerator to the host: ``_to_copy(x, device=cpu)``,
    ``copy_(host_tensor, x)``."""
    if name == 'copy_':
        source, target = args[1], args[0].device
    else:
        source, target = args[0], kwargs.get('device') or args[0].device
    return source.device.type not in ('cpu', 'meta') and torch.device(target).type == 'cpu'


class HostReads(TorchDispatchMode):
    """Counts, while active, the ops that read tensor values to the host, by (op name, where): ``where`` is the
    innermost line of this repository's code that called the op (``file.py:line``), or the autograd node for ops
    of the backward pass (e.g. ``backward IndexBackward0``)."""

    def __init__(self):
        super().__init__()
        self.sites: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if reads_to_host(func, args, kwargs):
            self.sites[(func.overloadpacket.__name__, _caller())] += 1
        return func(*args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.sites.values())


def _caller() -> str:
    node = torch._C._current_autograd_node()
    if node is not None:
        return f'backward {node.name()}'
    frames = [f for f in traceback.extract_stack() if f.filename.startswith(_CODE) and f.filename != __file__]
    return f'{osp.relpath(frames[-1].filename, _ROOT)}:{frames[-1].lineno}' if frames else 'outside this repository'


def sites_text(sites: Counter) -> Tuple[str, ...]:
    """``'N x op at where'`` per site, most frequent first, for error messages and reports."""
    return tuple(f'{n} x {op} at {where}' for (op, where), n in sites.most_common())
