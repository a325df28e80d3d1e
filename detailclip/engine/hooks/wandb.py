"""Weights & Biases logging through MMEngine's visualizer, with explicit step metrics and runs that survive --resume.

Off by default (nothing here imports ``wandb``). Enable it with ``tools/train.py CONFIG --wandb [PROJECT]``
(project ``detailclip`` by default), which calls :func:`enable_wandb`: the visualizer gets a
:class:`ResumableWandbVisBackend` next to its local backend and ``default_hooks`` a :class:`WandbRunHook`. A config
can do the same itself (both entries; ``init_kwargs`` of the backend go to ``wandb.init``). ``WANDB_MODE=offline``
writes the run under ``<work_dir>/<timestamp>/vis_data/wandb/`` for a later ``wandb sync``.

Each run is named after its work dir, grouped by its ablation family (``wandb_group`` in the config if set, else the
config's folders under ``configs/`` read inner to outer: ``configs/ablations/detailclip/*.py`` ->
``detailclip-ablations``), tagged with its method, masker settings (ratio, ratio semantics, the rest) and loss weights
(:func:`run_tags`), and carries the resolved config. Every logged row holds ``iter`` (iterations done), ``epoch``
(``iter`` / iterations per epoch, fractional) and ``samples_seen`` (``iter`` x batch size x world size; samples, not
views), defined as W&B step metrics with every other value plotted against ``iter``: MMEngine's plain backend lets
W&B count its own step, which misaligns curves after a resume. The run id is stored in each checkpoint's
``meta['wandb_run_id']`` and reused when training resumes from it, so the resumed run continues the same W&B run.
Only rank 0 talks to W&B (the visualizer's methods are rank-0 only, and the hook acts on rank 0 only).
"""
import os
import os.path as osp
import secrets
from typing import List, Optional

import numpy as np
from mmengine.config import Config
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.visualization import WandbVisBackend
from mmengine.visualization.vis_backend import force_init_env

from detailclip.registry import HOOKS, VISBACKENDS
from detailclip.engine.config import run_settings

STEP_METRICS = ('iter', 'epoch', 'samples_seen')


def enable_wandb(cfg: Config, project: str) -> None:
    """Make ``cfg`` log to the W&B project ``project`` as well (what ``tools/train.py --wandb`` does)."""
    backend = dict(type='ResumableWandbVisBackend', init_kwargs=dict(project=project))
    cfg.visualizer.vis_backends = [*cfg.visualizer.get('vis_backends', []), backend]
    cfg.default_hooks.wandb = dict(type='WandbRunHook')


def run_group(cfg: Config) -> Optional[str]:
    """``cfg.wandb_group`` if set, else the config's folders under ``configs/`` joined inner to outer
    (``configs/ablations/detailclip/x.py`` -> ``detailclip-ablations``, ``configs/slip/x.py`` -> ``slip``)."""
    if cfg.get('wandb_group'):
        return cfg.wandb_group
    if not cfg.filename:
        return None
    folders = osp.dirname(osp.abspath(cfg.filename)).split(os.sep)
    family = folders[len(folders) - folders[::-1].index('configs'):] if 'configs' in folders else folders[-1:]
    return '-'.join(reversed(family)) or None


def run_tags(cfg: Config) -> List[str]:
    """Tags from :func:`~detailclip.engine.config.run_settings`: the method; the masker, its ratio, the ratio's
    semantics (``remove``: the removed fraction; ``keep_plus_one``: the reference's count, see AttentionMask) and
    every other masker argument the config sets, so that runs a sweep tells apart carry different tags; and every
    loss weight, e.g. ``['method:detailclip', 'masker:AttentionMask', 'mask_ratio:0.5',
    'ratio_semantics:keep_plus_one', 'masker.block_size:2', 'w_clip:1.0', 'w_mae:1.0', 'w_ibot_cls:1.0',
    'w_ibot_patch:1.0']``."""
    settings = run_settings(cfg)
    tags = [f'method:{settings["method"]}']
    if settings['masker']:
        tags += [f'masker:{settings["masker"]}', f'mask_ratio:{settings["mask_ratio"]}']
        tags += [f'ratio_semantics:{settings["ratio_semantics"]}'] if settings['ratio_semantics'] else []
        tags += [f'masker.{key}:{value}' for key, value in settings['masker_settings'].items()]
    return tags + [f'w_{label.replace(".", "_")}:{value}' for label, value in settings['loss_weights'].items()]


@VISBACKENDS.register_module()
class ResumableWandbVisBackend(WandbVisBackend):
    """MMEngine's :class:`WandbVisBackend` with step metrics in every row and a run id that ``--resume`` reuses.

    ``wandb.init`` waits for the first logged value: MMEngine's backend starts the run in ``add_config``, which the
    Runner calls in its constructor, before ``runner.train()`` loads the checkpoint whose run id a resume must use.
    :class:`WandbRunHook` sets :attr:`steps` before every iteration and calls :meth:`resume_run` on resume.

    Args:
        save_dir (str): Where the ``wandb`` folder goes (the visualizer passes ``<log_dir>/vis_data``).
        init_kwargs (dict, optional): ``wandb.init`` arguments (``project``, ``entity``, ...); ``name``, ``group``,
            ``tags`` and ``config`` given here replace those derived from the config.
        **kwargs: :class:`WandbVisBackend` arguments.
    """

    def __init__(self, save_dir: str, init_kwargs: Optional[dict] = None, **kwargs):
        super().__init__(save_dir, init_kwargs=dict(init_kwargs or {}), **kwargs)
        # drawn from the OS, not from `random`: the Runner seeds that identically for every run
        self.run_id = self._init_kwargs.get('id') or secrets.token_hex(4)
        self.steps: Optional[dict] = None  # {'iter', 'epoch', 'samples_seen'} of the rows logged next

    def add_config(self, config: Config, **kwargs) -> None:
        """Name, group and tag the run from ``config`` and attach it whole, when the run starts."""
        self._init_kwargs.setdefault('name', osp.basename(osp.normpath(config.work_dir)))
        self._init_kwargs.setdefault('group', run_group(config))
        self._init_kwargs.setdefault('tags', run_tags(config))
        self._init_kwargs.setdefault('config', config.to_dict())

    def resume_run(self, run_id: str) -> None:
        """Continue the W&B run ``run_id`` (from a checkpoint) instead of starting a new one."""
        if getattr(self, '_env_initialized', False):
            raise RuntimeError(f'W&B run {self.run_id} started before the checkpoint with run {run_id} was loaded: '
                               'something logged to the visualizer before runner.train() loaded the checkpoint; '
                               'log from before_train or later')
        self.run_id = run_id

    def _init_env(self) -> None:
        self._init_kwargs.update(id=self.run_id, resume='allow')
        super()._init_env()
        for name in STEP_METRICS:
            self._wandb.define_metric(name)
        self._wandb.define_metric('*', step_metric='iter')

    @force_init_env
    def add_image(self, name: str, image: np.ndarray, step: int = 0, **kwargs) -> None:
        """Log an RGB ``image`` ``(H, W, 3)`` uint8 with the current step metrics (``step`` is unused)."""
        self._log({name: self._wandb.Image(image)})

    @force_init_env
    def add_scalar(self, name: str, value, step: int = 0, **kwargs) -> None:
        """Log one scalar with the current step metrics (``step`` is unused)."""
        self._log({name: value})

    @force_init_env
    def add_scalars(self, scalar_dict: dict, step: int = 0, file_path: Optional[str] = None, **kwargs) -> None:
        """Log ``scalar_dict`` as one row with the current step metrics (``step`` and ``file_path`` are unused)."""
        self._log(dict(scalar_dict))

    def _log(self, row: dict) -> None:
        if self.steps is None:
            raise RuntimeError(f'{type(self).__name__} logs every row with the step metrics {STEP_METRICS}, which '
                               "WandbRunHook sets during training: add default_hooks.wandb=dict(type='WandbRunHook') "
                               '(tools/train.py --wandb does)')
        self._wandb.log({**row, **self.steps}, commit=self._commit)


@HOOKS.register_module()
class WandbRunHook(Hook):
    """Gives :class:`ResumableWandbVisBackend` its step metrics and carries its run id through checkpoints
    (``meta['wandb_run_id']``), so a resumed training continues the same W&B run on the same step axis."""

    def before_train(self, runner) -> None:
        self._set_steps(runner, runner.iter)  # validation before the first iteration (or after a resume)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._set_steps(runner, runner.iter + 1)  # the rows logged after this iteration count it as done

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        backend = _backend(runner)
        if backend is not None:
            checkpoint['meta']['wandb_run_id'] = backend.run_id

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        run_id = checkpoint.get('meta', {}).get('wandb_run_id')
        backend = _backend(runner)
        # `_resume`: loading weights to start a new training (load_from without resume) starts a new run
        if backend is not None and run_id and runner._resume:
            backend.resume_run(run_id)
            runner.logger.info(f'continuing W&B run {run_id}')

    @staticmethod
    def _set_steps(runner, iters_done: int) -> None:
        backend = _backend(runner)
        if backend is not None:
            loader = runner.train_dataloader
            backend.steps = dict(iter=iters_done, epoch=iters_done / len(loader),
                                 samples_seen=iters_done * loader.batch_size * get_world_size())


def _backend(runner) -> Optional[ResumableWandbVisBackend]:
    """The W&B backend on rank 0; None on the other ranks, which never talk to W&B."""
    if not is_main_process():
        return None
    backend = runner.visualizer.get_backend(ResumableWandbVisBackend.__name__)
    if backend is None:
        raise RuntimeError("WandbRunHook needs visualizer.vis_backends to hold dict(type='ResumableWandbVisBackend', "
                           'init_kwargs=dict(project=...)); tools/train.py --wandb adds both')
    return backend
