from .data_preprocessor import ImageTextDataPreprocessor
from .encoders import CLIPTextTransformer, VisionTransformer
from .heads import *  # noqa: F401,F403
from .layers import AllReduceBatchNorm1d
from .losses import *  # noqa: F401,F403
from .maskers import *  # noqa: F401,F403
from .objectives import *  # noqa: F401,F403
from .pretrainer import NETWORKS, ImageTextPretrainer
from .teacher import EMATeacher

__all__ = ['AllReduceBatchNorm1d', 'CLIPTextTransformer', 'EMATeacher', 'ImageTextDataPreprocessor',
           'ImageTextPretrainer', 'NETWORKS', 'VisionTransformer']
