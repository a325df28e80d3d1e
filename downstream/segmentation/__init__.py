"""ADE20K semantic segmentation with mmsegmentation: configs in ``configs/``, the synthetic world's data set and the
overlay visualiser."""
from .datasets import SyntheticWorldADE20KDataset
from .visualizer import IgnoreAwareSegVisualizer

__all__ = ['IgnoreAwareSegVisualizer', 'SyntheticWorldADE20KDataset']
