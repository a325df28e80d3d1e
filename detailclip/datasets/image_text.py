"""Image-caption, image-folder and Karpathy-retrieval datasets (the formats the real data sets use)."""
import csv
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

from detailclip.registry import DATASETS
from .base import SkippingDataset

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class CsvImageTextDataset(SkippingDataset):
    """Image-caption pairs listed in a CSV/TSV file (open_clip's ``--csv-img-key/--csv-caption-key`` layout).

    Rows with an empty caption are dropped at load time and counted as ``empty_caption``; missing or unreadable
    images are skipped at load time of the sample (see :class:`SkippingDataset`).

    Args:
        ann_file (str): The CSV/TSV file, relative to ``data_root``.
        img_key (str): Column with the image path (relative to ``data_root`` + ``data_prefix['img_path']``).
        caption_key (str): Column with the caption.
        sep (str): Field separator (``','`` for CSV, ``'\\t'`` for open_clip's TSV).
        **kwargs: :class:`SkippingDataset` / :class:`BaseDataset` arguments.
    """

    def __init__(self, ann_file: str, img_key: str = 'filepath', caption_key: str = 'title', sep: str = ',',
                 **kwargs):
        self.img_key, self.caption_key, self.sep = img_key, caption_key, sep
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self._check_exists(self.ann_file, 'annotation file'), newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f, delimiter=self.sep)
            missing = {self.img_key, self.caption_key} - set(reader.fieldnames or ())
            if missing:
                raise KeyError(f'{self.ann_file} has no column(s) {sorted(missing)}; columns are {reader.fieldnames}. '
                               'Set img_key/caption_key (and sep) in the dataset config.')
            rows = list(reader)
        data_list = []
        for row in rows:
            caption = (row[self.caption_key] or '').strip()
            if not caption:
                self.skipped['empty_caption'] += 1
                continue
            data_list.append(dict(img_path=osp.join(self.data_prefix['img_path'], row[self.img_key]),
                                  caption=caption))
        return data_list


@DATASETS.register_module()
class ImageFolderClassification(SkippingDataset):
    """Single-label images in one folder per class, with the class names and prompt templates for zero-shot.

    Args:
        split (str): Sub-folder of ``data_root`` with one folder per class (e.g. ``classification/val``).
        zero_shot_file (str, optional): JSON with ``classes`` (names, in label order) and ``templates`` (each with
            one ``{}``), relative to ``data_root``. Without it, classes are the sorted folder names.
        classes (list[str], optional): Class folder names in label order; overrides the file.
        templates (list[str], optional): Prompt templates; overrides the file.
        **kwargs: :class:`SkippingDataset` / :class:`BaseDataset` arguments.
    """

    def __init__(self, split: str, zero_shot_file: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 templates: Optional[Sequence[str]] = None, **kwargs):
        self.split, self.zero_shot_file = split, zero_shot_file
        self._classes, self._templates = classes, templates
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        folder = self._check_exists(osp.join(self.data_root, self.split), 'image folder')
        spec = {}
        if self.zero_shot_file:
            with open(self._check_exists(osp.join(self.data_root, self.zero_shot_file), 'zero-shot file')) as f:
                spec = json.load(f)
        classes = list(self._classes or spec.get('classes') or sorted(os.listdir(folder)))
        self._metainfo.update(classes=classes, templates=list(self._templates or spec.get('templates', ['{}'])))
        data_list = []
        for label, name in enumerate(classes):
            class_dir = self._check_exists(osp.join(folder, name), f'folder of class {name!r}')
            for fname in sorted(os.listdir(class_dir)):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    data_list.append(dict(img_path=osp.join(class_dir, fname), gt_label=label))
        return data_list


@DATASETS.register_module()
class KarpathyRetrievalDataset(SkippingDataset):
    """Image-text retrieval split in Karpathy's JSON format (COCO 5k / Flickr30k 1k test splits).

    Each sample is an image with all of its captions (``captions``: list of str).

    Args:
        ann_file (str): Karpathy JSON (``{"images": [{"filepath", "filename", "split", "sentences": [{"raw"}]}]}``).
        split (str): Which split to keep (``test`` for the papers' numbers).
        **kwargs: :class:`SkippingDataset` / :class:`BaseDataset` arguments.
    """

    def __init__(self, ann_file: str, split: str = 'test', **kwargs):
        self.split = split
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self._check_exists(self.ann_file, 'annotation file')) as f:
            images = json.load(f)['images']
        data_list = []
        for img in images:
            if img.get('split', self.split) != self.split:
                continue
            path = osp.join(self.data_prefix['img_path'], img.get('filepath', ''), img['filename'])
            data_list.append(dict(img_path=path, img_id=len(data_list),
                                  captions=[s['raw'].strip() for s in img['sentences']]))
        return data_list
