"""Decoding an image once per sample (from a file, a zip archive member or bytes); every view is cut from it.

Images are turned upright by their EXIF orientation and converted to 8-bit RGB (grayscale, palette, CMYK, 16-bit);
every other bad image raises :class:`CorruptSampleError` with a short reason, which the dataset counts and skips.
A JPEG much larger than its views need is decoded at reduced size (:func:`plan_decoding`).
"""
import io
import math
import os
import warnings
import zipfile
from collections import OrderedDict
from typing import Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

from detailclip.registry import TRANSFORMS


class CorruptSampleError(Exception):
    """A sample that cannot be used; the dataset skips it and counts it under ``reason``.

    Args:
        reason (str): Short counter key, e.g. ``'missing_file'``, ``'unreadable_image'``.
        detail (str): What was wrong, for the log.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(f'{reason}: {detail}')
        self.reason = reason


class _ZipReader:
    """Members of zip archives, with the last ``capacity`` archives kept open per process.

    Handles are never shared across a fork: a worker process opens its own (a shared file offset would mix reads).
    """

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self.pid, self.archives = None, OrderedDict()

    def read(self, archive: str, member: str) -> bytes:
        if self.pid != os.getpid():
            self.pid, self.archives = os.getpid(), OrderedDict()
        handle = self.archives.pop(archive, None)
        if handle is None:
            handle = zipfile.ZipFile(archive)
            while len(self.archives) >= self.capacity:
                self.archives.popitem(last=False)[1].close()
        self.archives[archive] = handle
        return handle.read(member)


_ZIPS = _ZipReader()


def read_sample_bytes(results: dict) -> bytes:
    """The encoded image of a sample: ``results['img_bytes']``, a zip member (``results['archive']`` +
    ``results['member']``) or the file ``results['img_path']``.

    Raises:
        CorruptSampleError: ``missing_file``, ``missing_archive``, ``unreadable_archive``, ``missing_member`` or
            ``empty_file``.
    """
    if 'img_bytes' in results:
        data = results['img_bytes']
    elif 'archive' in results:
        data = _read_member(results['archive'], results['member'])
    else:
        try:
            with open(results['img_path'], 'rb') as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            raise CorruptSampleError('missing_file', str(results['img_path'])) from e
    if not data:
        raise CorruptSampleError('empty_file', str(results.get('img_path')))
    return data


def _read_member(archive: str, member: str) -> bytes:
    try:
        return _ZIPS.read(archive, member)
    except FileNotFoundError as e:
        raise CorruptSampleError('missing_archive', archive) from e
    except KeyError as e:
        raise CorruptSampleError('missing_member', f'{archive}::{member}') from e
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CorruptSampleError('unreadable_archive', f'{archive}::{member}: {e}') from e


@TRANSFORMS.register_module()
class LoadImageRGB:
    """``results`` -> ``results['img']``, an upright 8-bit RGB ``PIL.Image``, decoded once (views branch from it).

    The encoded image comes from :func:`read_sample_bytes`. It is turned upright as its EXIF Orientation tag says
    (:func:`upright_rgb`). Grayscale, palette, CMYK and 16-bit images are converted to RGB. Missing, empty,
    undecodable or truncated files, images over ``max_pixels`` (checked from the header, before decoding: a
    decompression bomb never allocates) and images under ``min_size`` raise :class:`CorruptSampleError`, which the
    dataset turns into a skipped, counted sample.

    Reduced decoding: when the dataset has set ``decode_side`` from the views that follow (:func:`plan_decoding`), a
    JPEG is decoded in draft mode at 1/2, 1/4 or 1/8 of its size, the smallest that keeps its shorter side at least
    ``decode_side``; other formats, and JPEGs less than twice that size, are decoded in full. Crop boxes are then
    drawn on the reduced image: the same distribution of crops, each the same as from the full image up to
    resampling error.

    Args:
        max_pixels (int): Largest accepted ``width * height``; PIL's decompression-bomb limit by default. PIL itself
            refuses images over twice its own ``Image.MAX_IMAGE_PIXELS``, whatever this value.
        min_size (int): Smallest accepted side in pixels.
        draft (bool): Decode large JPEGs at reduced size when the views allow it; False always decodes in full.
    """

    def __init__(self, max_pixels: int = Image.MAX_IMAGE_PIXELS, min_size: int = 16, draft: bool = True):
        self.max_pixels, self.min_size, self.draft = max_pixels, min_size, draft
        self.decode_side = None  # shorter side the views need; set by plan_decoding, None decodes in full

    def __call__(self, results: dict) -> dict:
        data = read_sample_bytes(results)
        where = results.get('img_path', '<bytes>')
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # our own limit decides below
                warnings.filterwarnings('ignore', 'Corrupt EXIF data', UserWarning)  # read as "no orientation"
                with Image.open(io.BytesIO(data)) as img:
                    self._check_size(img.size, where)
                    if self.draft and self.decode_side:
                        img.draft('RGB', (self.decode_side, self.decode_side))  # a no-op for other formats
                    results['img'] = upright_rgb(img)
        except Image.DecompressionBombError as e:
            raise CorruptSampleError('image_too_large', f'{where}: {e}') from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
            raise CorruptSampleError('unreadable_image', f'{where}: {e}') from e
        return results

    def _check_size(self, size, where: str) -> None:
        width, height = size
        if width * height > self.max_pixels:
            raise CorruptSampleError('image_too_large', f'{where}: {width}x{height} > max_pixels={self.max_pixels}')
        if min(width, height) < self.min_size:
            raise CorruptSampleError('image_too_small', f'{where}: {width}x{height}, min_size={self.min_size}')


def upright_rgb(img: Image.Image) -> Image.Image:
    """An opened image decoded, turned upright as its EXIF Orientation tag says (``ImageOps.exif_transpose``:
    cameras store portrait photos sideways with a tag), as 8-bit RGB. A missing or corrupt tag leaves it as stored."""
    img.load()
    ImageOps.exif_transpose(img, in_place=True)
    return _to_rgb(img)


def plan_decoding(transforms: Sequence) -> None:
    """Give each :class:`LoadImageRGB` of a pipeline the shorter side its views need (``decode_side``): the
    ``source_side`` of the transform right after it (:class:`MultiView`, :class:`MultiCrop`,
    :class:`EnclosingCropTriplet` compute it from their crop and resize settings). Without one (another transform
    follows, or a view whose geometry is unknown) the loader decodes in full. Datasets call this on their pipeline."""
    for loader, views in zip(transforms, transforms[1:]):
        if isinstance(loader, LoadImageRGB):
            side = getattr(views, 'source_side', None)
            loader.decode_side = None if side is None else math.ceil(side)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB copy of any PIL image (16-bit grayscale is scaled, not clipped)."""
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        img = img.point(lambda v: v / 256).convert('L')
    return img.convert('RGB')
