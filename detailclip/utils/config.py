"""Loading a config the way every command-line tool does (overrides, launcher, work dir)."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config


def use_cpu_ddp(cfg: Config) -> None:
    """DDP over gloo on CPU processes. MMEngine's launcher init and DDP wrapper pin a CUDA device (they fail without
    a driver), so the process group is initialised here (the Runner then skips its own init) and DDP gets no
    device ids."""
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                 find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group('gloo')  # env:// from torchrun / slurm's srun wrapper


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None) -> Config:
    """``path`` with ``--cfg-options`` merged, the launcher set (gloo DDP when there is no GPU) and the work dir
    defaulting to ``work_dirs/<config name>``."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        use_cpu_ddp(cfg)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
