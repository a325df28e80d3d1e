from .autocast import AutocastOptimWrapper
from .param_groups import CLIPOptimWrapperConstructor, is_no_decay, param_groups

__all__ = ['AutocastOptimWrapper', 'CLIPOptimWrapperConstructor', 'is_no_decay', 'param_groups']
from .schedules import WarmupCosineLR, warmup_cosine  # noqa: E402

__all__ += ['WarmupCosineLR', 'warmup_cosine']
from .layer_decay import LayerDecayOptimWrapperConstructor, layer_decay_groups, layer_id  # noqa: E402

__all__ += ['LayerDecayOptimWrapperConstructor', 'layer_decay_groups', 'layer_id']
