"""Finding the ops of a training step that read tensor values back to the host.

On a GPU each such read is a host-device synchronisation: the host waits until every queued kernel has run, and the
GPU then idles while the host queues the next ones. They come from ``.item()``/``bool(tensor)``/``int(tensor)``
(``aten._local_scalar_dense``) and from ops whose output shape depends on the data (boolean-mask indexing,
``nonzero``, ``masked_select``, ``unique``, ``repeat_interleave`` without ``output_size``) and from copies of device
tensors to the host (``.cpu()``, ``.tolist()``, ``.numpy()``). A host-to-device copy without ``non_blocking`` makes
the host wait the same way (PyTorch synchronises the stream after it), and so does an op that gets a host tensor
beside device tensors (a list index, say), which uploads it so; they count too. :class:`HostReads` sees all of them
at the dispatcher, so it finds the reads on a CPU too, where they cost nothing, and the uploads on fake CUDA tensors
(``FakeTensorMode``); what never dispatches is not seen: ``tolist()`` and ``numpy()`` of a CPU tensor, which on a
GPU would be device-to-host copies.
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
    """Whether the aten op ``func`` called with ``args``/``kwargs`` needs tensor values on the host, or makes the host
    wait for the device otherwise (a blocking upload)."""
    name = func.overloadpacket.__name__
    if name in _READS:
        return True
    if name in _COPIES:
        return _copy_waits(name, args, kwargs)
    if _uploads_host_tensors(args, kwargs):
        return True
    if name in _INDEXING:
        indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices)
    return func is torch.ops.aten.repeat_interleave.Tensor and kwargs.get('output_size') is None


def _copy_waits(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether the copy op ``name`` moves a tensor from an accelerator to the host (``_to_copy(x, device=cpu)``,
    ``copy_(host_tensor, x)``), or from the host to an accelerator without ``non_blocking``."""
    if name == 'copy_':
        source, target = args[1].device.type, args[0].device.type
        non_blocking = args[2] if len(args) > 2 else kwargs.get('non_blocking', False)
    else:
        source, target = args[0].device.type, torch.device(kwargs.get('device') or args[0].device).type
        non_blocking = kwargs.get('non_blocking', False)
    if 'meta' in (source, target) or source == target:
        return False
    return target == 'cpu' or (source == 'cpu' and not non_blocking)


def _uploads_host_tensors(args: tuple, kwargs: dict) -> bool:
    """Whether an op gets host tensors (other than 0-dim ones, which pass as scalars) beside accelerator tensors.
    (An aten op's tensors are its arguments or the items of a list argument.)"""
    devices = set()
    for arg in (*args, *kwargs.values()):
        for t in arg if isinstance(arg, (list, tuple)) else (arg, ):
            if isinstance(t, torch.Tensor) and (t.dim() > 0 or t.device.type != 'cpu'):
                devices.add(t.device.type)
    return 'cpu' in devices and len(devices - {'meta'}) > 1


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
