"""An infinite, resumable, rank-sliced sampler that also hands each draw its augmentation seed."""
import math
from typing import Iterator, Optional, Sized, Tuple

import torch
from mmengine.dist import get_dist_info, sync_random_seed

from detailclip.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler:
    """Yields ``(index, seed)`` forever: epoch ``e`` is a permutation seeded by ``(seed, e)``, sliced by rank.

    Draw ``g`` of the global stream (``g = position * world_size + rank``) maps to epoch ``g // len(dataset)``; its
    ``seed`` is a pure function of ``(seed, g)``, so the views of every sample are reproducible. A resumed run calls
    :meth:`set_position` with the number of samples this rank already consumed and continues the same stream without
    reading the trained samples again.

    Args:
        dataset (Sized): The dataset.
        shuffle (bool): Permute each epoch.
        seed (int, optional): Stream seed; synchronised across ranks when None.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: Optional[int] = None):
        self.rank, self.world_size = get_dist_info()
        self.size = len(dataset)
        if self.size == 0:
            raise ValueError('the dataset is empty: check data_root and the annotation file')
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.position = 0

    def set_position(self, samples_consumed: int) -> None:
        """Start the next iteration after ``samples_consumed`` samples of this rank."""
        self.position = samples_consumed

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        draw = self.position * self.world_size + self.rank
        epoch, order = None, None
        while True:
            if draw // self.size != epoch:
                epoch = draw // self.size
                order = self._epoch_order(epoch)
            yield int(order[draw % self.size]), (self.seed * 0x9E3779B1 + draw) % 2**63
            draw += self.world_size

    def __len__(self) -> int:
        """Samples per rank in one epoch (what MMEngine's epoch length is computed from)."""
        return math.ceil(self.size / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Epochs are part of the stream; nothing to do (kept for MMEngine's loops)."""
