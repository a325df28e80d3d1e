# the pure functions live in .ops (imported from there: ``random_mask`` etc. share names with these modules)
from .attention_mask import AttentionMask, AttMask
from .base import Masker, NoMask
from .block_mask import BlockMask
from .random_mask import RandomMask

__all__ = ['AttMask', 'AttentionMask', 'BlockMask', 'Masker', 'NoMask', 'RandomMask']
