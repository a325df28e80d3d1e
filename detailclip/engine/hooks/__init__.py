from .checkpoint import WeightsOnlyCheckpointHook
from .logit_scale import LogitScaleClampHook

__all__ = ['LogitScaleClampHook', 'WeightsOnlyCheckpointHook']
