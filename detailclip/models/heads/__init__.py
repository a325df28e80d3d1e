"""Heads owned by objectives (registered in ``MODELS``)."""
from .ibot_head import DINOHead, IBOTHead, WeightNormLinear
from .mae_decoder import MAEDecoder, PixelHead
from .mlp import MLPHead

__all__ = ['DINOHead', 'IBOTHead', 'MAEDecoder', 'MLPHead', 'PixelHead', 'WeightNormLinear']
