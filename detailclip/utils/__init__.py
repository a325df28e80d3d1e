from .checkpoint import allow_mmengine_checkpoints
from .dist import gather_features, get_rank, get_world_size

__all__ = ['allow_mmengine_checkpoints', 'gather_features', 'get_rank', 'get_world_size']
