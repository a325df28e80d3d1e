from .augment import RECIPES, PILGaussianBlur, sized_recipe
from .crops import EnclosingCropTriplet, MultiCrop, enclosing_box
from .loading import CorruptSampleError, LoadImageRGB, plan_decoding, upright_rgb
from .views import (MultiView, PackImageText, build_transform, build_view, crop_source_side, recipe_source_side,
                    views_source_side)

__all__ = ['CorruptSampleError', 'EnclosingCropTriplet', 'LoadImageRGB', 'MultiCrop', 'MultiView', 'PILGaussianBlur',
           'PackImageText', 'RECIPES', 'build_transform', 'build_view', 'crop_source_side', 'enclosing_box',
           'plan_decoding', 'recipe_source_side', 'sized_recipe', 'upright_rgb', 'views_source_side']
