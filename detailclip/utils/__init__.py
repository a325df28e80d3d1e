from .checkpoint import message_hub_from_plain, message_hub_to_plain
from .dist import all_reduce_mean, gather_features, get_rank, get_world_size

__all__ = ['all_reduce_mean', 'gather_features', 'get_rank', 'get_world_size', 'message_hub_from_plain',
           'message_hub_to_plain']
