"""Checkpoints that load with ``torch.load(weights_only=True)``.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults it to True, and an MMEngine
checkpoint holds the message hub's ``HistoryBuffer`` objects (numpy arrays and bound methods, pickled through
``getattr``), so ``--resume`` fails. Allow-listing ``getattr`` would let a crafted file reach arbitrary code, and
``weights_only=False`` runs any pickle. Instead our checkpoints store the buffers as plain lists and numbers, and
they are turned back into ``HistoryBuffer`` objects after loading: every file goes through the weights-only path.
"""
import numpy as np
from mmengine.logging.history_buffer import HistoryBuffer

_TAG = '__history_buffer__'


def buffer_to_plain(buffer: HistoryBuffer) -> dict:
    """A ``HistoryBuffer`` as a dict of Python lists and ints (weights-only loadable)."""
    logs, counts = buffer.data
    return {_TAG: True, 'log_history': [float(v) for v in logs], 'count_history': [int(c) for c in counts],
            'max_length': int(buffer.max_length)}


def plain_to_buffer(plain: dict) -> HistoryBuffer:
    """Inverse of :func:`buffer_to_plain`."""
    return HistoryBuffer(plain['log_history'], plain['count_history'], plain['max_length'])


def message_hub_to_plain(state: dict) -> dict:
    """Message-hub state dict with every ``HistoryBuffer`` replaced by plain data and numpy values of the runtime
    info (e.g. ``eta``) by Python numbers and lists (in place, returned)."""
    scalars = state.get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, HistoryBuffer):
            scalars[key] = buffer_to_plain(value)
    info = state.get('runtime_info', {})
    for key, value in info.items():
        if isinstance(value, (np.generic, np.ndarray)):
            info[key] = value.tolist()
    return state


def message_hub_from_plain(state: dict) -> dict:
    """Inverse of :func:`message_hub_to_plain` (in place, returned)."""
    scalars = state.get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and value.get(_TAG):
            scalars[key] = plain_to_buffer(value)
    return state
