from .checkpoint import AtomicCheckpointHook, WeightsOnlyCheckpointHook
from .ema import EMATeacherHook, cosine_momentum
from .faults import FaultInjectionHook
from .finite_loss import FiniteLossHook, NonFiniteLossError
from .freeze_last_layer import FreezeLastLayerHook
from .logit_scale import LogitScaleClampHook
from .seed import IterationSeedHook, iteration_seed
from .skipped_samples import SkippedSamplesHook
from .teacher_temp import TeacherTempHook
from .visualization import PretrainVisualizationHook
from .wandb import ResumableWandbVisBackend, WandbRunHook, enable_wandb

__all__ = ['AtomicCheckpointHook', 'EMATeacherHook', 'FaultInjectionHook', 'FiniteLossHook', 'FreezeLastLayerHook',
           'IterationSeedHook', 'LogitScaleClampHook', 'NonFiniteLossError', 'PretrainVisualizationHook',
           'ResumableWandbVisBackend', 'SkippedSamplesHook', 'TeacherTempHook', 'WandbRunHook',
           'WeightsOnlyCheckpointHook', 'cosine_momentum', 'enable_wandb', 'iteration_seed']
