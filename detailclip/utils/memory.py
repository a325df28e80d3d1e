"""Host-memory reuse between training steps (glibc ``malloc`` settings)."""
import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (glibc's malloc.h)
_INT_MAX = 2 ** 31 - 1


def reuse_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep the memory a training step frees and serve the next step's tensors from it.

    By default glibc maps each block above its mmap threshold (128 KiB, rising to at most 32 MiB) freshly from the
    kernel and unmaps it when it is freed, and returns the top of its heap to the kernel once 128 KiB lie free there.
    A training step allocates and frees the same large tensors every iteration (activations, (M, 8192) logits, their
    gradients), so without this each step page-faults and zero-fills all of them again: on the 2-core VM of
    docs/performance.md an elementwise product of two (1536, 8192) fp32 tensors takes 15 ms instead of 3 ms. After the
    call no block is mapped on its own, and the heap is trimmed only when 2 GiB lie free at its top, so the process
    keeps its peak resident size (which the peak measures anyway). The price is fragmentation: glibc's cache of small
    blocks can keep a freed block from merging with its neighbours for a few steps (a loop of one 64 MiB tensor settles
    at 5 such blocks; DetailCLIP ViT-B's step showed no higher peak). Forked data-loader workers inherit the setting.

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
