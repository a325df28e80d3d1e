# mmdet's runtime (default_scope 'mmdet', DetVisualizationHook) with the platform's backbone, layer-decay constructor
# and visualiser registered.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['downstream', 'downstream.detection', 'detailclip.engine'], allow_failed_imports=False)
# labels of objects at the image edges stay inside the image (tools/downstream.py draws into WORK_DIR/vis/)
visualizer = dict(type='LabelInsideDetVisualizer')
# the last 2 epochs' checkpoints (mmdet keeps every epoch), loadable with torch.load(weights_only=True) so that
# `--resume` needs no unsafe unpickling
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2),
                     weights_only=dict(type='detailclip.WeightsOnlyCheckpointHook'))
randomness = dict(seed=0)
