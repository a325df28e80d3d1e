from .base import SkipCounter, SkippingDataset
from .captions import clean_caption, pick_caption
from .formats import CocoCaptionsDataset, ConceptualCaptionsDataset, Yfcc15mDataset
from .image_text import CsvImageTextDataset, ImageFolderClassification, KarpathyRetrievalDataset
from .samplers import ResumableInfiniteSampler
from .tokenizer import CLIPTokenizer, Tokenize
from .transforms import (RECIPES, CorruptSampleError, EnclosingCropTriplet, LoadImageRGB, MultiCrop, MultiView,
                         PackImageText, PILGaussianBlur)
from .webdataset import WebImageTextDataset
from .workers import worker_init_fn

__all__ = ['CLIPTokenizer', 'CocoCaptionsDataset', 'ConceptualCaptionsDataset', 'CorruptSampleError',
           'CsvImageTextDataset', 'EnclosingCropTriplet', 'ImageFolderClassification', 'KarpathyRetrievalDataset',
           'LoadImageRGB', 'MultiCrop', 'MultiView', 'PILGaussianBlur', 'PackImageText', 'RECIPES',
           'ResumableInfiniteSampler', 'SkipCounter', 'SkippingDataset', 'Tokenize', 'WebImageTextDataset',
           'Yfcc15mDataset', 'clean_caption', 'pick_caption', 'worker_init_fn']
