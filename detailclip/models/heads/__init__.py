"""Heads owned by objectives (registered in ``MODELS``)."""
from .mae_decoder import MAEDecoder, PixelHead
from .mlp import MLPHead

__all__ = ['MAEDecoder', 'MLPHead', 'PixelHead']
