from .base import SkippingDataset
from .image_text import CsvImageTextDataset, ImageFolderClassification, KarpathyRetrievalDataset
from .samplers import ResumableInfiniteSampler
from .tokenizer import CLIPTokenizer, Tokenize
from .transforms import (RECIPES, CorruptSampleError, EnclosingCropTriplet, LoadImageRGB, MultiCrop, MultiView,
                         PackImageText, PILGaussianBlur)

__all__ = ['CLIPTokenizer', 'CorruptSampleError', 'CsvImageTextDataset', 'EnclosingCropTriplet',
           'ImageFolderClassification', 'KarpathyRetrievalDataset', 'LoadImageRGB', 'MultiCrop', 'MultiView',
           'PILGaussianBlur', 'PackImageText', 'RECIPES', 'ResumableInfiniteSampler', 'SkippingDataset', 'Tokenize']
