"""Behaviour shared by every dataset of the platform: seeded per-sample augmentation and counted skips.

Skip counts reach the main process inside the samples. A DataLoader worker holds its own copy of the dataset, so
its counter is invisible to the trainer; instead every sample a process returns carries, in its data sample's
metainfo ``skipped`` (``{reason: n}``), the skips that process made since its previous sample. A skipped draw is
replaced inside the same fetch, so each skip travels with the batch it delayed, exactly once, whatever the number
of workers; :class:`~detailclip.engine.hooks.SkippedSamplesHook` sums them, logs them per epoch and stops a run
drowning in bad data.
"""
import json
import os.path as osp
import random
from collections import Counter
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from .transforms import CorruptSampleError, plan_decoding

LOGGED_PER_REASON = 10  # skips of one reason logged one by one per process; later ones are only counted


class SkipCounter:
    """Counts skipped samples of this process and stamps what is new onto the samples it returns.

    ``skipped`` (Counter) holds every skip of this process; :meth:`settle` marks the current counts as reported
    another way (load-time drops, which the main process reads directly), so they never travel in samples.
    """

    def _init_skip_counter(self) -> None:
        self.skipped, self._reported = Counter(), Counter()

    def count_skip(self, error: CorruptSampleError, where: str) -> None:
        """Count ``error`` under its reason and log it (the first few of each reason only)."""
        self.skipped[error.reason] += 1
        n = self.skipped[error.reason]
        if n <= LOGGED_PER_REASON:
            more = f'; later {error.reason!r} skips of this process are only counted' if n == LOGGED_PER_REASON else ''
            print_log(f'skipped {where} ({error}){more}', logger='current', level=30)

    def settle(self) -> None:
        """Treat every skip counted so far as reported."""
        self._reported = Counter(self.skipped)

    def stamp_new_skips(self, data):
        """Put the skips counted since the last stamp into ``data['data_samples'].skipped`` (when it has one)."""
        new = self.skipped - self._reported
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if new and isinstance(sample, BaseDataElement):
            sample.set_metainfo(dict(skipped=dict(new)))
            self.settle()
        return data


class SkippingDataset(SkipCounter, BaseDataset):
    """A :class:`BaseDataset` that skips and counts bad samples and seeds augmentation per sample.

    * A key ``(index, seed)`` (what :class:`ResumableInfiniteSampler` yields) runs the pipeline under RNGs seeded with
      ``seed``, so a sample's views depend only on its place in the sample stream: a resumed run, any number of
      workers, and an uninterrupted run all see the same views.
    * A pipeline step raising :class:`CorruptSampleError` makes the sample count under its reason in
      ``self.skipped`` and another sample is drawn, so a bad file never stops a run; the count reaches the trainer
      in the returned sample (module docstring). Drops made while loading the annotations (e.g. empty captions)
      are counted in ``self.skipped`` of the main process.

    Args:
        auto_generate (dict, optional): If set and ``data_root`` holds no synthetic world, generate one with
            these arguments (rank 0 only; other ranks wait).
        **kwargs: :class:`BaseDataset` arguments (``max_refetch``: draws in a row that may fail before the fetch
            gives up with an error naming the reasons; ``data_prefix`` defaults to the format's image folder,
            ``dict(img_path=default_img_path)``).
    """

    default_img_path = ''  # the image folder under data_root of the format's usual layout

    def __init__(self, *args, auto_generate: Optional[dict] = None, **kwargs):
        self._init_skip_counter()
        kwargs.setdefault('data_prefix', dict(img_path=self.default_img_path))
        if auto_generate is not None:
            from .synthetic_world import ensure_world
            ensure_world(kwargs['data_root'], **auto_generate)
        super().__init__(*args, **kwargs)
        plan_decoding(self.pipeline.transforms)  # large JPEGs decoded at the size the views need

    def _check_exists(self, path: str, what: str) -> str:
        """Raise a FileNotFoundError that says how to get the data when ``path`` is missing."""
        if not osp.exists(path):
            raise FileNotFoundError(
                f'{type(self).__name__}: {what} {path!r} does not exist. For the built-in synthetic world run '
                f'`python tools/data/make_synthetic_world.py --out {self.data_root or "data/synthetic_world"}` '
                '(or set `auto_generate=dict()` in the dataset config); for real data, set `data_root`.')
        return path

    def read_json(self, path: str, what: str) -> Any:
        """The JSON file ``path`` (with or without a byte-order mark), or :meth:`_check_exists`'s error."""
        with open(self._check_exists(path, what), encoding='utf-8-sig') as f:
            return json.load(f)

    def full_init(self) -> None:
        super().full_init()
        self.settle()  # load-time drops are read from the main process, never carried in samples

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> dict:
        if not isinstance(key, tuple):
            return self.stamp_new_skips(self._fetch(key))
        idx, seed = key
        with torch.random.fork_rng(devices=[]):
            py_state, np_state = random.getstate(), np.random.get_state()
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                return self.stamp_new_skips(self._fetch(idx))
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

    def _fetch(self, idx: int) -> dict:
        """``prepare_data(idx)``, redrawing a random index while samples are skipped (MMEngine's refetch)."""
        if self.test_mode or not self._fully_initialized:
            return super().__getitem__(idx)
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = self._rand_another()
        raise RuntimeError(
            f'{type(self).__name__}: {self.max_refetch + 1} draws in a row were skipped; this process has skipped '
            f'{dict(self.skipped)} so far. The data under {self.data_root!r} is mostly unusable: see the warnings '
            'above for the files and fix the data or the dataset config (layout, data_prefix, ann_file).')

    def parse_rows(self, rows: Iterable, parse: Callable[[int, Any], dict]) -> List[dict]:
        """The data list ``[parse(i, row) for i, row in enumerate(rows)]``, without the rows whose ``parse`` raises
        :class:`CorruptSampleError`: those are dropped and counted under the reason (load-time drops)."""
        data_list = []
        for i, row in enumerate(rows):
            try:
                data_list.append(parse(i, row))
            except CorruptSampleError as e:
                self.skipped[e.reason] += 1
        return data_list

    def sample_info(self, idx: int) -> dict:
        """The data info the pipeline receives; formats that draw a caption per sample override it."""
        return self.get_data_info(idx)

    def prepare_data(self, idx: int):
        try:
            return self.pipeline(self.sample_info(idx))
        except CorruptSampleError as e:
            self.count_skip(e, f'sample {idx}')
            return None
