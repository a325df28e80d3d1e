from .checkpoint import AtomicCheckpointHook, WeightsOnlyCheckpointHook
from .ema import EMATeacherHook, cosine_momentum
from .faults import FaultInjectionHook
from .finite_loss import FiniteLossHook, NonFiniteLossError
from .logit_scale import LogitScaleClampHook
from .seed import IterationSeedHook, iteration_seed
from .skipped_samples import SkippedSamplesHook
from .teacher_temp import TeacherTempHook

__all__ = ['AtomicCheckpointHook', 'EMATeacherHook', 'FaultInjectionHook', 'FiniteLossHook', 'IterationSeedHook',
           'LogitScaleClampHook', 'NonFiniteLossError', 'SkippedSamplesHook', 'TeacherTempHook',
           'WeightsOnlyCheckpointHook', 'cosine_momentum', 'iteration_seed']
