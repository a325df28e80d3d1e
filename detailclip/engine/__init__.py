from .hooks import EMATeacherHook, LogitScaleClampHook, TeacherTempHook, WeightsOnlyCheckpointHook
from .loops import MultiTestLoop, MultiValLoop, ResumableIterBasedTrainLoop
from .optim import AutocastOptimWrapper, CLIPOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'CLIPOptimWrapperConstructor', 'EMATeacherHook', 'LogitScaleClampHook',
           'MultiTestLoop', 'MultiValLoop', 'ResumableIterBasedTrainLoop', 'TeacherTempHook',
           'WeightsOnlyCheckpointHook']
