from .data_preprocessor import ImageTextDataPreprocessor
from .encoders import CLIPTextTransformer, VisionTransformer
from .losses import *  # noqa: F401,F403
from .objectives import CLIPObjective
from .pretrainer import ImageTextPretrainer

__all__ = ['CLIPObjective', 'CLIPTextTransformer', 'ImageTextDataPreprocessor', 'ImageTextPretrainer',
           'VisionTransformer']
