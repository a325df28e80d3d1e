# mmdet's runtime (default_scope 'mmdet', DetLocalVisualizer, DetVisualizationHook) with the platform's backbone and
# layer-decay constructor registered.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['downstream', 'detailclip.engine'], allow_failed_imports=False)
# the last 2 epochs' checkpoints (mmdet keeps every epoch), loadable with torch.load(weights_only=True) so that
# `--resume` needs no unsafe unpickling
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2),
                     weights_only=dict(type='detailclip.WeightsOnlyCheckpointHook'))
randomness = dict(seed=0)
