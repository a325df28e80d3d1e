"""ADE20K semantic segmentation with mmsegmentation: configs in ``configs/`` and the synthetic world's data set."""
from .datasets import SyntheticWorldADE20KDataset

__all__ = ['SyntheticWorldADE20KDataset']
