"""Pretraining image-caption formats of the reference code: SLIP's YFCC15M pickle (SLIP's and DetailCLIP's image
layouts), Conceptual Captions TSVs (CC3M / CC12M) and COCO captions. docs/data.md shows each layout on disk.

Captions are checked and drawn per sample with the helpers of :mod:`.captions`; images are read by
:class:`~detailclip.datasets.transforms.LoadImageRGB` from a file or a zip member (``archive`` + ``member``).
"""
import csv
import os.path as osp
import pickle
from collections import defaultdict
from typing import Iterator, List, Optional, Sequence

from detailclip.registry import DATASETS
from .base import SkippingDataset
from .captions import clean_caption, pick_caption
from .transforms import CorruptSampleError


def read_rows(path: str, sep: str, quoting: int = csv.QUOTE_MINIMAL) -> Iterator[List[str]]:
    """Rows of a UTF-8 CSV/TSV file, with or without a byte-order mark (``utf-8-sig``: Excel and PowerShell write
    one, which would otherwise glue itself to the first column's name). Bytes that are not UTF-8 survive as lone
    surrogates (``surrogateescape``), so one bad caption makes :func:`clean_caption` skip its row instead of
    stopping the whole file."""
    with open(path, newline='', encoding='utf-8-sig', errors='surrogateescape') as f:
        reader = csv.reader(f, delimiter=sep, quoting=quoting)
        try:
            yield from reader
        except csv.Error as e:
            raise ValueError(f'{path}, line {reader.line_num}: {e}. A quote (") that opens a field and never closes '
                             'makes the rest of the file one field: close it, or double quotes inside a quoted '
                             'field ("a ""b"" c")') from e


def row_fields(i: int, row: List[str], columns: List[str]) -> dict:
    """Row ``i`` as ``{column: field}``.

    Raises:
        CorruptSampleError: ``malformed_row`` when the row has more or fewer fields than ``columns``: an unquoted
            separator inside a field (a caption cut at a comma, the rest shifted into extra fields) or a missing
            field.
    """
    if len(row) != len(columns):
        raise CorruptSampleError('malformed_row', f'row {i} has {len(row)} fields, expected {len(columns)} '
                                 f'({columns}): {row!r:.200}')
    return dict(zip(columns, row))


@DATASETS.register_module()
class Yfcc15mDataset(SkippingDataset):
    """YFCC15M from SLIP's metadata pickle with the images in zip archives or folders.

    ``layout='slip'`` (SLIP's ``make_dataset.py`` / ``yfcc_loader``): rows ``(uid: int, title, description)``; with
    ``d = f'{uid:08d}'`` the image is member ``{d[5:]}.jpg`` of ``<img_path>/{d[:2]}/{d[2:5]}.zip``, or the file
    ``<img_path>/{d[:2]}/{d[2:5]}/{d[5:]}.jpg`` with ``storage='folder'``.

    ``layout='hash'`` (DetailCLIP's ``datasets.py``, docs/methods.md Q-D14): rows ``(index, hash, title, description)``;
    the image is member ``data/images/{h[:3]}/{h[3:6]}/{h}.jpg`` of ``<img_path>/{h[:3]}.zip`` (the reference
    hard-codes ``img_path='test_zip_3'``), or that member path under ``<img_path>`` with ``storage='folder'``.

    Args:
        ann_file (str): The metadata pickle (``yfcc15m.pkl``). Unpickling runs code from the file: use only
            metadata you trust.
        layout (str): ``slip`` or ``hash``.
        storage (str): ``zip`` or ``folder``.
        caption_mode (str): ``random_title_or_desc`` (SLIP, A-CLIP; a uniform draw per sample, seeded with the
            sample) or ``concat`` (DetailCLIP: ``title + ' ' + description``). See :func:`pick_caption`.
        **kwargs: :class:`SkippingDataset` arguments; ``data_prefix=dict(img_path=...)`` is the image root
            (default ``images``).
    """

    LAYOUTS = dict(slip=('uid', 'title', 'description'), hash=('index', 'hash', 'title', 'description'))
    default_img_path = 'images'

    def __init__(self, ann_file: str, layout: str = 'slip', storage: str = 'zip',
                 caption_mode: str = 'random_title_or_desc', **kwargs):
        if layout not in self.LAYOUTS or storage not in ('zip', 'folder'):
            raise ValueError(f"Yfcc15mDataset: layout must be 'slip' or 'hash' and storage 'zip' or 'folder', got "
                             f'{layout!r}, {storage!r}')
        self.layout, self.storage, self.caption_mode = layout, storage, caption_mode
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self._check_exists(self.ann_file, 'metadata pickle'), 'rb') as f:
            rows = pickle.load(f)
        fields = self.LAYOUTS[self.layout]
        if rows and len(rows[0]) != len(fields):
            hint = {3: "layout='slip'", 4: "layout='hash'"}.get(len(rows[0]), 'a SLIP or DetailCLIP metadata file')
            raise ValueError(f'{self.ann_file}: rows have {len(rows[0])} fields, layout={self.layout!r} expects '
                             f'{fields}; use {hint}')
        key = 0 if self.layout == 'slip' else 1
        return [dict(key=row[key], title=row[-2], description=row[-1]) for row in rows]

    def sample_info(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        info['caption'] = pick_caption((info['title'], info['description']), self.caption_mode)
        info.update(self._image_location(info['key']))
        return info

    def _image_location(self, key) -> dict:
        """``archive`` + ``member`` (zip storage) or ``img_path`` (folder storage) of a row's image."""
        root = self.data_prefix['img_path']
        if self.layout == 'slip':
            d = f'{int(key):08d}'
            folder, name = osp.join(root, d[:2], d[2:5]), f'{d[5:]}.jpg'
        else:
            h = str(key)
            folder, name = osp.join(root, h[:3]), f'data/images/{h[:3]}/{h[3:6]}/{h}.jpg'
        if self.storage == 'folder':
            path = osp.join(folder, name) if self.layout == 'slip' else osp.join(root, name)
            return dict(img_path=path)
        return dict(archive=folder + '.zip', member=name, img_path=f'{folder}.zip::{name}')


@DATASETS.register_module()
class ConceptualCaptionsDataset(SkippingDataset):
    """Conceptual Captions (CC3M, CC12M) from the released TSV, images downloaded next to it.

    The released files have no header: CC3M's ``Train_GCC-training.tsv`` is ``caption<TAB>url``
    (``columns=('caption', 'url')``), CC12M's ``cc12m.tsv`` is ``url<TAB>caption`` (``columns=('url', 'caption')``).
    ``layout='img2dataset'`` finds row ``i``'s image where img2dataset's ``files`` output writes it:
    ``{s:0{shard_digits}d}/{key}.jpg`` with ``s = i // samples_per_shard`` and ``key`` = ``s`` followed by
    ``i % samples_per_shard`` (zero-padded); images that failed to download are missing and are skipped.
    ``layout='column'`` reads the image path (relative to ``data_prefix['img_path']``) from column ``img_key``.

    Rows with an empty, whitespace-only or non-UTF-8 caption, or with the wrong number of fields, are dropped at
    load time and counted (``empty_caption``, ``undecodable_caption``, ``malformed_row``).

    Args:
        ann_file (str): The TSV file.
        columns (Sequence[str], optional): Column names of a file without a header; None reads them from the
            first row.
        layout (str): ``img2dataset`` or ``column``.
        img_key (str): Image-path column (``layout='column'``).
        caption_key (str): Caption column.
        samples_per_shard (int): img2dataset's ``number_sample_per_shard``.
        shard_digits (int): Digits of img2dataset's shard numbers (its ``oom_shard_count``).
        sep (str): Field separator.
        **kwargs: :class:`SkippingDataset` arguments.
    """

    def __init__(self, ann_file: str, columns: Optional[Sequence[str]] = ('caption', 'url'),
                 layout: str = 'img2dataset', img_key: str = 'filepath', caption_key: str = 'caption',
                 samples_per_shard: int = 10000, shard_digits: int = 5, sep: str = '\t', **kwargs):
        if layout not in ('img2dataset', 'column'):
            raise ValueError(f"ConceptualCaptionsDataset: layout must be 'img2dataset' or 'column', got {layout!r}")
        self.columns, self.layout, self.img_key, self.caption_key = columns, layout, img_key, caption_key
        self.samples_per_shard, self.shard_digits, self.sep = samples_per_shard, shard_digits, sep
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        rows = read_rows(self._check_exists(self.ann_file, 'annotation file'), self.sep, csv.QUOTE_NONE)
        columns = list(self.columns) if self.columns else next(rows, [])
        needed = [self.caption_key] + ([self.img_key] if self.layout == 'column' else [])
        missing = sorted(set(needed) - set(columns))
        if missing:
            raise KeyError(f'{self.ann_file}: no column(s) {missing}; columns are {columns}. Set columns (None '
                           'reads a header row), caption_key and img_key in the dataset config.')
        return self.parse_rows(rows, lambda i, row: self._parse_row(i, row, columns))

    def _parse_row(self, i: int, row: List[str], columns: List[str]) -> dict:
        fields = row_fields(i, row, columns)
        caption = clean_caption(fields[self.caption_key])
        if self.layout == 'column':
            rel = fields[self.img_key]
        else:
            shard, k = divmod(i, self.samples_per_shard)
            digits = len(str(self.samples_per_shard - 1))
            rel = f'{shard:0{self.shard_digits}d}/{shard:0{self.shard_digits}d}{k:0{digits}d}.jpg'
        return dict(img_path=osp.join(self.data_prefix['img_path'], rel), caption=caption)


@DATASETS.register_module()
class CocoCaptionsDataset(SkippingDataset):
    """COCO captions (``annotations/captions_train2017.json``): one sample per image, one of its captions drawn
    per sample (SLIP's COCO loader), seeded with the sample.

    Args:
        ann_file (str): The captions JSON (``images`` with ``id``/``file_name``, ``annotations`` with
            ``image_id``/``caption``).
        caption_mode (str): ``random_of_list`` (default) or ``concat``.
        **kwargs: :class:`SkippingDataset` arguments; ``data_prefix=dict(img_path='train2017')`` is the image folder.
    """

    default_img_path = 'train2017'

    def __init__(self, ann_file: str, caption_mode: str = 'random_of_list', **kwargs):
        self.caption_mode = caption_mode
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        coco = self.read_json(self.ann_file, 'captions JSON')
        captions = defaultdict(list)
        for ann in coco['annotations']:
            captions[ann['image_id']].append(ann['caption'])
        return [dict(img_path=osp.join(self.data_prefix['img_path'], img['file_name']), img_id=img['id'],
                     captions=captions[img['id']]) for img in coco['images'] if captions[img['id']]]

    def sample_info(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        info['caption'] = pick_caption(info['captions'], self.caption_mode)
        return info
