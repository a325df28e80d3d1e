"""CLIP byte-level BPE tokenizer (OpenAI vocabulary, shipped offline inside the ``open_clip_torch`` wheel)."""
from typing import List, Optional, Sequence, Union

import torch
from open_clip.tokenizer import SimpleTokenizer

from detailclip.registry import TRANSFORMS


class CLIPTokenizer:
    """Turns captions into ``(n, context_length)`` int64 token ids: SOT, BPE ids, EOT, zero padding.

    CLIP (arXiv 2103.00020) pools the text tower at the EOT token, found as the row's maximum id. The reference
    code truncates long captions to the first ``context_length`` ids and so drops EOT (docs/methods.md Q-T1); by default
    the last id of a truncated row is forced to EOT, and ``truncate_keep_eot=False`` reproduces the reference.
    A caption longer than ``max_chars`` characters (after collapsing whitespace) is cut there before BPE, whose
    time grows with the caption: a megabyte-long caption would otherwise stall a data worker for seconds.

    Args:
        context_length (int): Tokens per caption, SOT and EOT included.
        truncate_keep_eot (bool): Keep EOT as the last id when a caption is truncated.
        max_chars (int, optional): Characters kept before BPE; default ``32 * context_length``, far more than
            ``context_length`` tokens of text take.
    """

    _bpe = None  # one shared vocabulary per process: building the BPE merges table is slow

    def __init__(self, context_length: int = 77, truncate_keep_eot: bool = True, max_chars: Optional[int] = None):
        if context_length < 2:
            raise ValueError(f'context_length must be >= 2 (SOT + EOT), got {context_length}')
        if CLIPTokenizer._bpe is None:
            CLIPTokenizer._bpe = SimpleTokenizer()
        self.bpe = CLIPTokenizer._bpe
        self.context_length = context_length
        self.truncate_keep_eot = truncate_keep_eot
        self.max_chars = max_chars or 32 * context_length
        self.sot_id, self.eot_id = self.bpe.sot_token_id, self.bpe.eot_token_id
        self.vocab_size = len(self.bpe.encoder)

    def encode(self, text: str) -> List[int]:
        """Token ids of one caption, SOT and EOT included, truncated to ``context_length``."""
        if len(text) > self.max_chars:
            text = ' '.join(text.split())[:self.max_chars]
        ids = [self.sot_id] + self.bpe.encode(text) + [self.eot_id]
        if len(ids) > self.context_length:
            ids = ids[:self.context_length]
            if self.truncate_keep_eot:
                ids[-1] = self.eot_id
        return ids

    def __call__(self, texts: Union[str, Sequence[str]]) -> torch.Tensor:
        """Tokenize one caption -> ``(L,)`` or a list of captions -> ``(n, L)``, int64, zero padded."""
        single = isinstance(texts, str)
        rows = [self.encode(t) for t in ([texts] if single else texts)]
        out = torch.zeros(len(rows), self.context_length, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, :len(ids)] = torch.tensor(ids)
        return out[0] if single else out


@TRANSFORMS.register_module()
class Tokenize:
    """Pipeline step: ``results[key]`` -> ``results[out_key]``: a caption gives ``(L,)``, a list of captions ``(n, L)``.

    Args:
        context_length (int): Tokens per caption.
        truncate_keep_eot (bool): See :class:`CLIPTokenizer`.
        key (str): Input field holding the caption(s).
        out_key (str): Output field for the token ids.
        max_chars (int, optional): See :class:`CLIPTokenizer`.
    """

    def __init__(self, context_length: int = 77, truncate_keep_eot: bool = True, key: str = 'caption',
                 out_key: str = 'text', max_chars: Optional[int] = None):
        self.tokenizer = CLIPTokenizer(context_length, truncate_keep_eot, max_chars)
        self.key, self.out_key = key, out_key

    def __call__(self, results: dict) -> dict:
        results[self.out_key] = self.tokenizer(results[self.key])
        return results
