from .hooks import LogitScaleClampHook, WeightsOnlyCheckpointHook
from .loops import MultiTestLoop, MultiValLoop, ResumableIterBasedTrainLoop
from .optim import AutocastOptimWrapper, CLIPOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'CLIPOptimWrapperConstructor', 'LogitScaleClampHook', 'MultiTestLoop',
           'MultiValLoop', 'ResumableIterBasedTrainLoop', 'WeightsOnlyCheckpointHook']
