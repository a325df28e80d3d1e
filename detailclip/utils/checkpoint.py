"""Loading MMEngine checkpoints on torch >= 2.6 without turning off ``weights_only``.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults it to True and refuses the
message-hub and numpy objects an MMEngine checkpoint holds, so ``--resume`` fails. Instead of loading every file
with ``weights_only=False`` (which runs arbitrary pickled code), the few types our own checkpoints contain are
allow-listed; any other global in a file still makes the load fail.
"""
import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def checkpoint_safe_globals() -> list:
    """The non-tensor types MMEngine writes into a training checkpoint (message hub, numpy scalars)."""
    multiarray = (np._core if hasattr(np, '_core') else np.core).multiarray
    numpy_types = [np.dtype, np.ndarray, multiarray._reconstruct, multiarray.scalar]
    numpy_types += [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return [HistoryBuffer, *numpy_types]


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load(weights_only=True)`` (idempotent)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
