from .loading import CorruptSampleError, LoadImageRGB
from .views import MultiView, PackImageText, build_view, stack_views

__all__ = ['CorruptSampleError', 'LoadImageRGB', 'MultiView', 'PackImageText', 'build_view', 'stack_views']
