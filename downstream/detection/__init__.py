"""COCO instance segmentation with mmdetection: configs in ``configs/`` and the drawing visualiser."""
from .visualizer import LabelInsideDetVisualizer

__all__ = ['LabelInsideDetVisualizer']
