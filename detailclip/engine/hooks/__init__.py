from .checkpoint import WeightsOnlyCheckpointHook
from .ema import EMATeacherHook, cosine_momentum
from .logit_scale import LogitScaleClampHook
from .teacher_temp import TeacherTempHook

__all__ = ['EMATeacherHook', 'LogitScaleClampHook', 'TeacherTempHook', 'WeightsOnlyCheckpointHook',
           'cosine_momentum']
