from .augment import RECIPES, PILGaussianBlur, sized_recipe
from .crops import EnclosingCropTriplet, MultiCrop, enclosing_box
from .loading import CorruptSampleError, LoadImageRGB
from .views import MultiView, PackImageText, build_transform, build_view

__all__ = ['CorruptSampleError', 'EnclosingCropTriplet', 'LoadImageRGB', 'MultiCrop', 'MultiView', 'PILGaussianBlur',
           'PackImageText', 'RECIPES', 'build_transform', 'build_view', 'enclosing_box', 'sized_recipe']
