from .hooks import (AtomicCheckpointHook, EMATeacherHook, FaultInjectionHook, FiniteLossHook, IterationSeedHook,
                    LogitScaleClampHook, TeacherTempHook, WeightsOnlyCheckpointHook)
from .log_processor import LoopTimeLogProcessor
from .loops import MultiTestLoop, MultiValLoop, ResumableIterBasedTrainLoop
from .optim import AutocastOptimWrapper, CLIPOptimWrapperConstructor

__all__ = ['AtomicCheckpointHook', 'AutocastOptimWrapper', 'CLIPOptimWrapperConstructor', 'EMATeacherHook',
           'FaultInjectionHook', 'FiniteLossHook', 'IterationSeedHook', 'LogitScaleClampHook', 'LoopTimeLogProcessor',
           'MultiTestLoop', 'MultiValLoop', 'ResumableIterBasedTrainLoop', 'TeacherTempHook',
           'WeightsOnlyCheckpointHook']
