"""Host-memory reuse between training steps (glibc ``malloc`` settings)."""
import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (glibc's malloc.h)
_INT_MAX = 2 ** 31 - 1


def reuse_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep the memory a training step frees and serve the next step's tensors from it.

    glibc otherwise maps each large block freshly from the kernel and unmaps it on free, so every step page-faults
    and zero-fills its large tensors again. Afterwards nothing is mapped on its own and the heap is trimmed only when
    2 GiB lie free at its top: the process keeps its peak resident size, at the price of some fragmentation. Forked
    data-loader workers inherit the setting. What it saves per step: docs/performance_figures.md.

    Returns:
        bool: True once set; False, changing nothing, where the C library has no ``mallopt`` (not glibc).
    """
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def config_reuses_freed_memory(cfg) -> bool:
    """Whether a config asks for :func:`reuse_freed_memory`: its ``env_cfg.reuse_freed_memory`` (off when absent)."""
    return bool(cfg.get('env_cfg', {}).get('reuse_freed_memory', False))
