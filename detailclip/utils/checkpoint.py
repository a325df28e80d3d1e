"""Checkpoints that load with ``torch.load(weights_only=True)``.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults it to True, and an MMEngine
checkpoint holds the message hub's ``HistoryBuffer`` objects (numpy arrays and bound methods, pickled through
``getattr``), so ``--resume`` fails. Allow-listing ``getattr`` would let a crafted file reach arbitrary code, and
``weights_only=False`` runs any pickle. Instead our checkpoints store the buffers as plain lists and numbers, and
they are turned back into ``HistoryBuffer`` objects after loading: every file goes through the weights-only path
(:func:`load_from_local` states ``weights_only=True`` for every local file MMEngine loads).

Files are written atomically (:func:`atomic_write`, :class:`AtomicLocalBackend`), so a run killed at any moment
leaves every checkpoint and the ``last_checkpoint`` pointer either as it was or complete.
"""
import glob
import os
import os.path as osp
import secrets
import signal
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

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


# --- Atomic writes -------------------------------------------------------------------------------------------------
# A checkpoint or pointer file is written to a temporary file in the same directory, flushed and fsynced, then
# renamed over the target with os.replace: a reader (or a resumed run) sees the old file or the complete new one,
# never a prefix, whatever moment the writer is killed at.

ATOMIC_BACKEND = 'detailclip_atomic_local'
_TMP_SUFFIX = '.partial'
_write_faults: Dict[str, Tuple[int, str]] = {}  # file name -> (bytes written before the fault, action)


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically: write ``.<name>.<random>.partial`` next to it, fsync, ``os.replace``,
    then fsync the directory so the rename itself survives a crash."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'.{osp.basename(path)}.{secrets.token_hex(4)}{_TMP_SUFFIX}')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for a plain open()
    try:
        with os.fdopen(fd, 'wb') as f:
            _write(f, data, osp.basename(path))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _write(f, data: bytes, name: str) -> None:
    """Write ``data``; a fault armed for ``name`` (:func:`arm_write_fault`) fires once, after its byte count."""
    fault = _write_faults.pop(name, None)
    if fault is not None:
        after_bytes, action = fault
        f.write(data[:after_bytes])
        f.flush()
        os.fsync(f.fileno())
        if action == 'raise':
            raise OSError(f'injected fault while writing {name} (after {after_bytes} bytes)')
        os.kill(os.getpid(), signal.SIGKILL)
    f.write(data)


def arm_write_fault(name: str, after_bytes: int, action: str = 'kill') -> None:
    """Test-only fault injection: the next write of a file named ``name`` stops after ``after_bytes`` bytes of its
    temporary file and either SIGKILLs this process (``'kill'``, as ``kill -9`` would) or raises ``OSError``
    (``'raise'``)."""
    if action not in ('kill', 'raise'):
        raise ValueError(f'unknown write-fault action {action!r}: use "kill" or "raise"')
    _write_faults[name] = (int(after_bytes), action)


def disarm_write_faults() -> None:
    """Remove every armed write fault."""
    _write_faults.clear()


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(directory: str) -> List[str]:
    """Delete the temporary files that writes killed mid-way left in ``directory``; returns their paths."""
    stale = glob.glob(osp.join(directory, f'.*{_TMP_SUFFIX}'))
    for path in stale:
        os.unlink(path)
    return stale


@register_backend(ATOMIC_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with atomic ``put``/``put_text`` (:func:`atomic_write`). Select it with
    ``backend_args=dict(backend='detailclip_atomic_local')``, as :class:`AtomicCheckpointHook` does."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), obj.encode(encoding))


# --- Loading -------------------------------------------------------------------------------------------------------

@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> dict:
    """MMEngine's loader of local checkpoint files (``load_from``, ``--resume``), with ``weights_only=True`` stated
    explicitly, so an environment setting such as ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot make a file run
    arbitrary pickled code."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=True)
