"""Per-iteration seeding of torch's RNG, so a resumed run draws the same random numbers as an uninterrupted one."""
import numpy as np
import torch
from mmengine.hooks import Hook

from detailclip.registry import HOOKS
from detailclip.utils.dist import get_rank


def iteration_seed(seed: int, iteration: int, rank: int) -> int:
    """A 63-bit seed that is a pure function of (run seed, iteration, rank), well mixed (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, iteration, rank]).generate_state(1, np.uint64)[0] >> np.uint64(1))


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Seeds torch's RNG (CPU and every GPU) before each training iteration with :func:`iteration_seed`.

    The model's random draws (random and block masks, drop path, dropout) then depend only on the run seed, the
    iteration and the rank: ``--resume`` continues the exact trajectory without storing RNG states in checkpoints,
    and DDP ranks draw independent masks. Data augmentation has its own per-sample seeds
    (:class:`~detailclip.datasets.samplers.ResumableInfiniteSampler`).
    """

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        torch.manual_seed(iteration_seed(runner.seed, runner.iter, get_rank()))
