from .base import SkippingDataset
from .image_text import CsvImageTextDataset, ImageFolderClassification, KarpathyRetrievalDataset
from .samplers import ResumableInfiniteSampler
from .tokenizer import CLIPTokenizer, Tokenize
from .transforms import CorruptSampleError, LoadImageRGB, MultiView, PackImageText

__all__ = ['CLIPTokenizer', 'CorruptSampleError', 'CsvImageTextDataset', 'ImageFolderClassification',
           'KarpathyRetrievalDataset', 'LoadImageRGB', 'MultiView', 'PackImageText', 'ResumableInfiniteSampler',
           'SkippingDataset', 'Tokenize']
