"""Image and text encoders (registered in ``MODELS``)."""
from .text import CLIPTextTransformer
from .vit import VisionTransformer

__all__ = ['CLIPTextTransformer', 'VisionTransformer']
