from .checkpoint import WeightsOnlyCheckpointHook
from .ema import EMATeacherHook, cosine_momentum
from .logit_scale import LogitScaleClampHook

__all__ = ['EMATeacherHook', 'LogitScaleClampHook', 'WeightsOnlyCheckpointHook', 'cosine_momentum']
