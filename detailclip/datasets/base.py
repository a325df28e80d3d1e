"""Behaviour shared by every dataset of the platform: seeded per-sample augmentation and counted skips."""
import os.path as osp
import random
from collections import Counter
from typing import Optional, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .transforms import CorruptSampleError


class SkippingDataset(BaseDataset):
    """A :class:`BaseDataset` that skips and counts bad samples and seeds augmentation per sample.

    * A key ``(index, seed)`` (what :class:`ResumableInfiniteSampler` yields) runs the pipeline under RNGs seeded with
      ``seed``, so a sample's views depend only on its place in the sample stream: a resumed run, any number of
      workers, and an uninterrupted run all see the same views.
    * A pipeline step raising :class:`CorruptSampleError` makes the sample count under its reason in
      ``self.skipped`` and another sample is drawn (MMEngine's refetch), so a bad file never stops a run.

    Args:
        auto_generate (dict, optional): If set and ``data_root`` holds no synthetic world, generate one with
            these arguments (rank 0 only; other ranks wait).
        **kwargs: :class:`BaseDataset` arguments.
    """

    def __init__(self, *args, auto_generate: Optional[dict] = None, **kwargs):
        self.skipped = Counter()
        if auto_generate is not None:
            from .synthetic_world import ensure_world
            ensure_world(kwargs['data_root'], **auto_generate)
        super().__init__(*args, **kwargs)

    def _check_exists(self, path: str, what: str) -> str:
        """Raise a FileNotFoundError that says how to get the data when ``path`` is missing."""
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{type(self).__name__}: {what} {path!r} does not exist. For the built-in synthetic world run '
                f'`python tools/data/make_synthetic_world.py --out {self.data_root or "data/synthetic_world"}` '
                '(or set `auto_generate=dict()` in the dataset config); for real data, set `data_root`.')
        return path

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> dict:
        if not isinstance(key, tuple):
            return super().__getitem__(key)
        idx, seed = key
        with torch.random.fork_rng(devices=[]):
            py_state, np_state = random.getstate(), np.random.get_state()
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                return super().__getitem__(idx)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

    def prepare_data(self, idx: int):
        try:
            return super().prepare_data(idx)
        except CorruptSampleError as e:
            self.skipped[e.reason] += 1
            print_log(f'skipped sample {idx} ({e}); skipped so far: {dict(self.skipped)}', logger='current',
                      level=30)
            return None
