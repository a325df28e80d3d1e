"""DataLoader worker set-up: one compute thread per worker and rank-distinct RNGs."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank

from detailclip.registry import FUNCTIONS


@FUNCTIONS.register_module()
def worker_init_fn(worker_id: int, torch_threads: int = 1, opencv_threads: int = 0) -> None:
    """Limit a data worker's intra-op threads and give it RNGs of its own.

    Without this, every worker's torch and OpenCV would start a thread pool as large as the machine (N workers x
    N threads oversubscribe the cores). Config: ``train_dataloader.worker_init_fn =
    dict(type='detailclip.worker_init_fn')`` (the Runner looks functions up in MMEngine's root registry, hence the
    scope prefix).
    It replaces MMEngine's default worker seeding, so it seeds too: from the worker's torch seed (drawn by the
    DataLoader from the main process's seeded RNG) and the rank, so ranks differ as with MMEngine's default.

    Args:
        worker_id (int): The worker's index (given by the DataLoader).
        torch_threads (int): ``torch.set_num_threads`` of the worker.
        opencv_threads (int): ``cv2.setNumThreads`` of the worker (0: OpenCV runs single-threaded), when OpenCV
            is installed.
    """
    torch.set_num_threads(torch_threads)
    try:
        import cv2
        cv2.setNumThreads(opencv_threads)
    except ImportError:
        pass
    seed = (torch.initial_seed() + 1_000_003 * get_rank()) % 2**32
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
