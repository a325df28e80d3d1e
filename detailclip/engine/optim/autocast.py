"""Mixed precision where MMEngine's AmpOptimWrapper refuses to run (it asserts a GPU)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from detailclip.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs the forward pass under ``torch.autocast`` without loss scaling (bf16 needs none).

    On CPUs with AMX, bf16 matmuls run several times faster than fp32. Backward and the optimizer step stay outside
    autocast, as with :class:`mmengine.optim.AmpOptimWrapper`.

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'``.
        device_type (str, optional): Autocast device; the CUDA device when present, else ``'cpu'``.
        **kwargs: :class:`OptimWrapper` arguments.
    """

    def __init__(self, dtype: str = 'bfloat16', device_type: str = None, **kwargs):
        super().__init__(**kwargs)
        self.dtype = getattr(torch, dtype)
        self.device_type = device_type or ('cuda' if torch.cuda.is_available() else 'cpu')

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield
