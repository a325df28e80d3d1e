# mmseg's runtime with the platform's backbone, data set and layer-decay constructor registered.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['downstream', 'downstream.segmentation', 'detailclip.engine'],
                      allow_failed_imports=False)
randomness = dict(seed=0)
# overlays that leave the ignored background as the image (tools/downstream.py draws them into WORK_DIR/vis/)
visualizer = dict(type='IgnoreAwareSegVisualizer')
