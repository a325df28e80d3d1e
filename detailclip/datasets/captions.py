"""Caption checks and caption policies shared by every image-text format.

A caption is usable when it decodes as UTF-8 and holds a visible character; anything else raises
:class:`CorruptSampleError` (``undecodable_caption`` / ``empty_caption`` / ``invisible_caption``), so the sample is
skipped and counted. Long captions are kept: the tokenizer truncates them.
"""
import unicodedata
from typing import Sequence, Union

import torch

from .transforms import CorruptSampleError

CAPTION_MODES = ('random_title_or_desc', 'concat', 'random_of_list')
# Letters and symbols that render as blank space: the Hangul fillers (Unicode default-ignorable) and the blank
# Braille pattern, used to pass a "non-empty" check with nothing to read.
BLANK_CHARACTERS = frozenset('\u115f\u1160\u3164\uffa0\u2800')


def is_visible(char: str) -> bool:
    """Whether ``char`` renders as something to read: a letter, number, punctuation mark or symbol (Unicode
    categories L, N, P, S) other than :data:`BLANK_CHARACTERS`. Control (Cc), format (Cf: zero-width spaces and
    joiners, word joiner, byte-order mark, bidi marks), separator (Z), unassigned, private-use and surrogate
    characters and lone combining marks (M) are not."""
    return unicodedata.category(char)[0] in 'LNPS' and char not in BLANK_CHARACTERS


def clean_caption(text: Union[str, bytes, None]) -> str:
    """``text`` stripped; bytes are decoded as UTF-8.

    Raises:
        CorruptSampleError: ``undecodable_caption`` for bytes that are not UTF-8 (or a string holding the lone
            surrogates that ``errors='surrogateescape'`` leaves for them), ``empty_caption`` for None, empty or
            whitespace-only text, ``invisible_caption`` for text without a visible character (:func:`is_visible`),
            such as ``'\\u200b\\u200c'`` or ``'\\x00\\x07'``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as e:
            raise CorruptSampleError('undecodable_caption', f'not UTF-8: {text[:40]!r}') from e
    text = (text or '').strip()
    if not text:
        raise CorruptSampleError('empty_caption', 'empty or whitespace-only caption')
    try:
        text.encode('utf-8')
    except UnicodeEncodeError as e:
        raise CorruptSampleError('undecodable_caption', f'not UTF-8: {text[:40]!r}') from e
    if not any(map(is_visible, text)):
        raise CorruptSampleError('invisible_caption', f'no visible character: {text[:40]!r}')
    return text


def pick_caption(candidates: Sequence[Union[str, bytes, None]], mode: str) -> str:
    """One caption from a sample's caption fields, drawn with torch's RNG (the dataset seeds it per sample).

    Args:
        candidates (Sequence[str | bytes | None]): Caption fields, e.g. YFCC's ``(title, description)`` or COCO's
            five captions. Unusable ones are ignored.
        mode (str): ``random_title_or_desc`` / ``random_of_list``: a uniform choice among the usable fields (SLIP,
            A-CLIP; the reference also picks an empty field, which trains on an empty caption); ``concat``: the
            usable fields joined by a space (DetailCLIP's ``title + ' ' + desc``, docs/methods.md Q-D14).

    Raises:
        CorruptSampleError: When no field is usable (the reason of the first field's problem).
    """
    if mode not in CAPTION_MODES:
        raise ValueError(f'caption_mode must be one of {CAPTION_MODES}, got {mode!r}')
    usable, first_error = [], None
    for text in candidates:
        try:
            usable.append(clean_caption(text))
        except CorruptSampleError as e:
            first_error = first_error or e
    if not usable:
        raise first_error or CorruptSampleError('empty_caption', 'no caption')
    if mode == 'concat':
        return ' '.join(usable)
    return usable[int(torch.randint(len(usable), ()))]
