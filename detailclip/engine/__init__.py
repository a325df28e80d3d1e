from .hooks import EMATeacherHook, LogitScaleClampHook, WeightsOnlyCheckpointHook
from .loops import MultiTestLoop, MultiValLoop, ResumableIterBasedTrainLoop
from .optim import AutocastOptimWrapper, CLIPOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'CLIPOptimWrapperConstructor', 'EMATeacherHook', 'LogitScaleClampHook',
           'MultiTestLoop', 'MultiValLoop', 'ResumableIterBasedTrainLoop', 'WeightsOnlyCheckpointHook']
