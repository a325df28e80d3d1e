"""Decoding an image file once per sample; every view is cut from the decoded image."""
from PIL import Image, UnidentifiedImageError

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


@TRANSFORMS.register_module()
class LoadImageRGB:
    """``results['img_path']`` -> ``results['img']``, a decoded RGB ``PIL.Image``.

    Grayscale, palette, CMYK and 16-bit images are converted to 8-bit RGB. A missing or undecodable file raises
    :class:`CorruptSampleError`, which the dataset turns into a skipped, counted sample.
    """

    def __call__(self, results: dict) -> dict:
        path = results['img_path']
        try:
            with Image.open(path) as img:
                img.load()
                results['img'] = _to_rgb(img)
        except FileNotFoundError as e:
            raise CorruptSampleError('missing_file', str(path)) from e
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise CorruptSampleError('unreadable_image', f'{path}: {e}') from e
        return results


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB copy of any PIL image (16-bit grayscale is scaled, not clipped)."""
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
        img = img.point(lambda v: v / 256).convert('L')
    return img.convert('RGB')
