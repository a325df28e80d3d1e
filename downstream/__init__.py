"""Downstream adapter: registers :class:`ViTBackbone` into mmsegmentation's and mmdetection's model registries.

Configs load it with ``custom_imports=dict(imports=['downstream'])`` and use ``type='ViTBackbone'`` under
``default_scope='mmseg'`` or ``'mmdet'``; the layer-decay constructor is
``constructor='detailclip.LayerDecayOptimWrapperConstructor'``.
The core ``detailclip`` package never imports mmcv/mmseg/mmdet; this package is where they meet.
"""
from .backbone import ViTBackbone, fpn_level

__all__ = ['ViTBackbone', 'fpn_level']
