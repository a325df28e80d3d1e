"""Image-caption, image-folder and Karpathy-retrieval datasets (the formats the real data sets use)."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from detailclip.registry import DATASETS
from .base import SkippingDataset
from .captions import clean_caption
from .class_lists import zero_shot_preset
from .formats import read_rows, row_fields

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class CsvImageTextDataset(SkippingDataset):
    """Image-caption pairs listed in a CSV/TSV file (open_clip's ``--csv-img-key/--csv-caption-key`` layout).

    The first row names the columns. The file is UTF-8, with or without a byte-order mark. Rows whose caption is
    unusable (see :func:`clean_caption`) or whose number of fields differs from the header's (``malformed_row``: an
    unquoted separator inside a caption, a missing field) are dropped at load time and counted; blank lines are no
    rows. Missing or unreadable images are skipped when the sample is drawn (see :class:`SkippingDataset`).

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
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        rows = read_rows(self._check_exists(self.ann_file, 'annotation file'), self.sep)
        columns = next(rows, [])
        missing = {self.img_key, self.caption_key} - set(columns)
        if missing:
            raise KeyError(f'{self.ann_file} has no column(s) {sorted(missing)}; columns are {columns}. '
                           'Set img_key/caption_key (and sep) in the dataset config.')
        return self.parse_rows(filter(None, rows), lambda i, row: self._parse_row(i, row, columns))

    def _parse_row(self, i: int, row: List[str], columns: List[str]) -> dict:
        fields = row_fields(i, row, columns)
        return dict(img_path=osp.join(self.data_prefix['img_path'], fields[self.img_key]),
                    caption=clean_caption(fields[self.caption_key]))


@DATASETS.register_module()
class ImageFolderClassification(SkippingDataset):
    """Single-label images in one folder per class, with the class names and prompt templates for zero-shot.

    The zero-shot list (a JSON file, or one shipped with the package) holds ``classes`` (names in label order; a
    class may be a list of synonyms), ``templates`` (each with one ``{}``) and optionally ``folders`` (the folder of
    each class, e.g. ImageNet's synset ids; the class names by default).

    Args:
        split (str): Sub-folder of ``data_root`` with one folder per class (e.g. ``classification/val``).
        zero_shot_file (str, optional): Zero-shot list JSON, relative to ``data_root``.
        zero_shot_preset (str, optional): Name of a list shipped in ``detailclip/datasets/zero_shot_lists``
            (``'imagenet1k'``: CLIP's 1000 ImageNet names, the 7 templates of docs/methods.md 9.1, synset-id folders).
        classes (list[str], optional): Class folder names (and names) in label order; overrides the list. Without
            a list or classes, the sorted folder names.
        templates (list[str], optional): Prompt templates; overrides the list.
        **kwargs: :class:`SkippingDataset` / :class:`BaseDataset` arguments.
    """

    def __init__(self, split: str, zero_shot_file: Optional[str] = None, zero_shot_preset: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None, templates: Optional[Sequence[str]] = None, **kwargs):
        if zero_shot_file and zero_shot_preset:
            raise ValueError('ImageFolderClassification: give zero_shot_file or zero_shot_preset, not both')
        self.split, self.zero_shot_file, self.zero_shot_preset = split, zero_shot_file, zero_shot_preset
        self._classes, self._templates = classes, templates
        super().__init__(**kwargs)

    def _zero_shot_list(self) -> dict:
        """The zero-shot list of ``zero_shot_file`` or ``zero_shot_preset`` (empty without either)."""
        if self.zero_shot_preset:
            return zero_shot_preset(self.zero_shot_preset)
        if not self.zero_shot_file:
            return {}
        return self.read_json(osp.join(self.data_root, self.zero_shot_file), 'zero-shot file')

    def _class_folders(self, folder: str, spec: dict) -> Tuple[list, List[str]]:
        """(class names in label order, the folder of each)."""
        if self._classes:
            return list(self._classes), list(self._classes)
        classes = list(spec.get('classes') or sorted(os.listdir(folder)))
        folders = spec.get('folders')
        if folders is None and not all(isinstance(c, str) for c in classes):
            raise ValueError('the zero-shot list gives synonym lists as classes: it needs "folders" (the folder of '
                             'each class, in label order)')
        folders = list(folders or classes)
        if len(folders) != len(classes):
            raise ValueError(f'the zero-shot list has {len(classes)} classes but {len(folders)} folders')
        return classes, folders

    def load_data_list(self) -> List[dict]:
        folder = self._check_exists(osp.join(self.data_root, self.split), 'image folder')
        spec = self._zero_shot_list()
        classes, folders = self._class_folders(folder, spec)
        self._metainfo.update(classes=classes, templates=list(self._templates or spec.get('templates', ['{}'])))
        data_list = []
        for label, (name, sub) in enumerate(zip(classes, folders)):
            class_dir = self._check_exists(osp.join(folder, sub), f'folder of class {name!r}')
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
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        images = self.read_json(self.ann_file, 'annotation file')['images']
        data_list = []
        for img in images:
            if img.get('split', self.split) != self.split:
                continue
            path = osp.join(self.data_prefix['img_path'], img.get('filepath', ''), img['filename'])
            data_list.append(dict(img_path=path, img_id=len(data_list),
                                  captions=[s['raw'].strip() for s in img['sentences']]))
        return data_list
