"""Image-caption pairs streamed from webdataset tar shards (open_clip's cluster format).

Built on the public webdataset 1.x API: ``DataPipeline``, ``ResampledShards``/``SimpleShardList``,
``split_by_node``/``split_by_worker``, ``shuffle``, ``RandomMix``, and ``url_opener``/``group_by_keys`` applied per
shard. Tar members are read here rather than by ``tar_file_expander``, for two reasons: since webdataset 0.2.96
that expander ends every shard with an ``{}`` marker, which breaks open_clip-style groupers with
``KeyError: 'fname'`` (ecosystem.md), and after a failed read it lets the cut shard's last files merge with the next
shard's records; ``tarfile`` also takes a shard cut at or inside a header for a normal end, which only a missing
end-of-archive marker reveals.

Resume: a resumed run does not replay the interrupted stream. :meth:`WebImageTextDataset.set_position` (called by
:class:`~detailclip.engine.ResumableIterBasedTrainLoop` with the samples already trained) derives a fresh stream seed
from it, so the resumed run draws other shards and shuffles differently, while a rerun of the same resume is
reproducible. See docs/data.md.
"""
import itertools
import multiprocessing
import os.path as osp
import random
import tarfile
from functools import partial
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
import webdataset as wds
from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, url_opener

from detailclip.registry import DATASETS
from .base import SkipCounter
from .captions import clean_caption
from .transforms import CorruptSampleError, plan_decoding


@DATASETS.register_module()
class WebImageTextDataset(SkipCounter, IterableDataset):
    """Samples ``<key>.jpg`` + ``<key>.txt`` from tar shards, through the same pipeline as the map-style datasets.

    Every (rank, worker) reads its own stream: with ``resampled=True`` shards are drawn with replacement from a seed
    of its own (open_clip's ``--dataset-resampled``: an endless stream, right for iteration-based training);
    otherwise each pass splits the shard list by rank, then by worker, and shuffles it. Samples go through a
    shuffle buffer, then the pipeline. ``epoch_size`` is the nominal number of samples of one epoch over all ranks
    (open_clip's ``--train-num-samples``): each worker yields its share of it per pass, so ``len(dataloader)`` is
    defined and the loader never yields more batches than it reports.

    Bad input is skipped and counted like in :class:`SkippingDataset`: a record without an image or a caption
    (``missing_member``), bad captions and images (see :func:`clean_caption`, :class:`LoadImageRGB`), a shard that
    ends mid-record (``truncated_shard``, once per read of the shard), a missing or unreadable shard
    (``missing_shard`` / ``unreadable_shard``).

    Args:
        sources (str | list[dict]): Brace-expanded shard URLs (``'shards/train-{0000..0099}.tar'``, ``::``
            separates several), or a list of ``dict(urls=..., weight=...)``, mixed at random in proportion to the
            weights. Relative paths are under ``data_root``.
        epoch_size (int): Samples per epoch over all ranks.
        pipeline (list[dict]): Transforms applied to ``dict(img_bytes, caption, img_path)``.
        data_root (str): Prefix of relative shard paths.
        resampled (bool): Draw shards with replacement (endless stream) instead of splitting passes over them.
        shard_shuffle (int): Shard shuffle buffer of a non-resampled pass.
        shuffle_buffer (int): Sample shuffle buffer per worker.
        shuffle_initial (int): Samples buffered before the first one is yielded.
        seed (int): Stream seed; the per-worker seeds derive from it, the rank, the worker, the pass and the resume
            position.
        image_keys (Sequence[str]): Extensions looked up, in order, for the image.
        caption_keys (Sequence[str]): Extensions looked up, in order, for the caption.
        max_refetch (int): Skips in a row after which the stream gives up with an error naming the reasons (an
            endless resampled stream of unusable shards would otherwise never yield a batch).
    """

    def __init__(self, sources: Union[str, Sequence[dict]], epoch_size: int, pipeline: Sequence[dict] = (),
                 data_root: str = '', resampled: bool = True, shard_shuffle: int = 100, shuffle_buffer: int = 1000,
                 shuffle_initial: int = 100, seed: int = 0,
                 image_keys: Sequence[str] = ('jpg', 'jpeg', 'png', 'webp'), caption_keys: Sequence[str] = ('txt', ),
                 max_refetch: int = 1000):
        super().__init__()
        self._init_skip_counter()
        self.sources = self._expand_sources(sources, data_root)
        self.epoch_size, self.resampled, self.seed = epoch_size, resampled, seed
        self.shard_shuffle, self.shuffle_buffer, self.shuffle_initial = shard_shuffle, shuffle_buffer, shuffle_initial
        self.image_keys, self.caption_keys = tuple(image_keys), tuple(caption_keys)
        self.max_refetch, self._skips_in_a_row = max_refetch, 0
        self.pipeline = Compose(list(pipeline))
        plan_decoding(self.pipeline.transforms)  # large JPEGs decoded at the size the views need
        self.rank, self.world_size = get_dist_info()
        # shared with the DataLoader workers, which (persistent or not) read it when they start a pass
        self._position = multiprocessing.RawValue('q', 0)
        self._passes = 0

    @staticmethod
    def _expand_sources(sources: Union[str, Sequence[dict]], data_root: str) -> List[dict]:
        """``[dict(urls=[expanded shard paths], weight=w)]``."""
        if isinstance(sources, str):
            sources = [dict(urls=sources)]
        out = []
        for source in sources:
            urls = [u if '://' in u or u.startswith('pipe:') else osp.join(data_root, u)
                    for u in wds.shardlists.expand_urls(source['urls'])]
            if not urls:
                raise ValueError(f'WebImageTextDataset: {source["urls"]!r} expands to no shard')
            out.append(dict(urls=urls, weight=float(source.get('weight', 1.0))))
        return out

    def set_position(self, samples_consumed: int) -> None:
        """Start the next pass as a resumed stream after ``samples_consumed`` samples of this rank (a fresh seed)."""
        self._position.value = samples_consumed

    def __len__(self) -> int:
        """Samples per rank in one epoch (MMEngine's epoch length and ``max_epochs`` are computed from it)."""
        return self.epoch_size // self.world_size

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        seed = wds.utils.make_seed(self.seed, self._position.value, self.rank, worker, self._passes,
                                   info.seed if info else 0)
        self._passes += 1
        if info is not None:  # a worker's own RNGs drive the augmentations: distinct per rank, worker and pass
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
        share = len(self) // num_workers + (worker < len(self) % num_workers)
        prepared = (self._prepare(raw) for raw in self._raw_stream(seed))
        for sample in itertools.islice((s for s in prepared if s is not None), share):
            self._skips_in_a_row = 0
            yield self.stamp_new_skips(sample)

    def count_skip(self, error: CorruptSampleError, where: str) -> None:
        super().count_skip(error, where)
        self._skips_in_a_row += 1
        if self._skips_in_a_row > self.max_refetch:
            raise RuntimeError(
                f'WebImageTextDataset: {self._skips_in_a_row} records or shards in a row were unusable; this worker '
                f'has skipped {dict(self.skipped)} so far. Check the shards of {[s["urls"][0] for s in self.sources]} '
                '(the warnings above name the first bad ones) and image_keys / caption_keys.')

    def _raw_stream(self, seed: int) -> Iterator[dict]:
        """Records (``{'__key__', '__url__', ext: bytes}``) of this worker, mixed over the sources by weight."""
        streams = [self._source_stream(source['urls'], seed + i) for i, source in enumerate(self.sources)]
        if len(streams) == 1:
            return iter(streams[0])
        return iter(wds.RandomMix(streams, probs=[s['weight'] for s in self.sources], longest=not self.resampled))

    def _source_stream(self, urls: List[str], seed: int) -> wds.DataPipeline:
        if self.resampled:
            shards = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
        else:
            shards = [wds.SimpleShardList(urls), wds.split_by_node, wds.split_by_worker,
                      wds.shuffle(self.shard_shuffle, initial=self.shard_shuffle, seed=seed)]
        return wds.DataPipeline(*shards, partial(url_opener, handler=self._on_open_error), self._records,
                                wds.shuffle(self.shuffle_buffer, initial=self.shuffle_initial, seed=seed + 1))

    def _on_open_error(self, error: Exception) -> bool:
        """webdataset error handler of shard opening: count, then go on with the next shard."""
        reason = 'missing_shard' if isinstance(error, FileNotFoundError) else 'unreadable_shard'
        self.count_skip(CorruptSampleError(reason, str(error)[:200]), 'a shard')
        return True

    def _records(self, shards: Iterator[dict]) -> Iterator[dict]:
        """Records of each opened shard, grouped by key within the shard: the files of a shard cut short never merge
        with the next shard's records (webdataset's own grouper carries them over when a read fails)."""
        for shard in shards:
            yield from group_by_keys(self._members(shard), handler=self._on_group_error)

    def _on_group_error(self, error: Exception) -> bool:
        self.count_skip(CorruptSampleError('malformed_record', str(error)[:200]), 'a record')
        return True

    def _members(self, shard: dict) -> Iterator[dict]:
        """Files (``fname``, ``data``) of one opened shard. A shard that ends inside a member, or without tar's
        end-of-archive marker (cut at or inside a header, which ``tarfile`` takes for a normal end), counts as
        ``truncated_shard``; a file that is no tar archive as ``unreadable_shard``."""
        url, stream = shard['url'], shard['stream']
        try:
            with tarfile.open(fileobj=stream, mode='r|*', tarinfo=_EndMarkerTarInfo) as tar:
                for info in tar:
                    if info.isreg():
                        yield dict(fname=info.name, data=tar.extractfile(info).read(), __url__=url)
                    tar.members = []  # a streamed shard keeps no headers
                if not getattr(tar, 'end_marker_seen', False):
                    raise tarfile.ReadError('unexpected end of data: no end-of-archive marker')
        except (tarfile.TarError, EOFError, OSError) as e:
            reason = 'truncated_shard' if 'unexpected end' in str(e) else 'unreadable_shard'
            self.count_skip(CorruptSampleError(reason, f'{url}: {e}'), 'the rest of a shard')
        finally:
            stream.close()

    def _prepare(self, raw: dict) -> Optional[dict]:
        """One record through the pipeline; None (counted) when it is unusable."""
        where = f'{raw.get("__url__")}#{raw.get("__key__")}'
        try:
            image = next((raw[k] for k in self.image_keys if k in raw), None)
            caption = next((raw[k] for k in self.caption_keys if k in raw), None)
            if image is None or caption is None:
                missing = 'image' if image is None else 'caption'
                raise CorruptSampleError('missing_member', f'{where} has no {missing} ({sorted(raw)})')
            return self.pipeline(dict(img_bytes=image, caption=clean_caption(caption), img_path=where))
        except CorruptSampleError as e:
            self.count_skip(e, where)
            return None


class _EndMarkerTarInfo(tarfile.TarInfo):
    """Marks the archive when its end-of-archive marker (a zero block) is read; a shard cut short has none."""

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            tar.end_marker_seen = True
            raise
