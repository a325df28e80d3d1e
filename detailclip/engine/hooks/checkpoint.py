"""Checkpoints that load on torch's weights-only path and are written atomically (see detailclip.utils.checkpoint)."""
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook

from detailclip.registry import HOOKS
from detailclip.utils.checkpoint import (ATOMIC_BACKEND, atomic_write, message_hub_from_plain, message_hub_to_plain,
                                         remove_stale_temp_files)


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Stores the message hub's history buffers as plain data when saving, and restores them when loading."""

    priority = 'VERY_LOW'  # after every other hook has added its entries to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            message_hub_to_plain(checkpoint['message_hub'])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            message_hub_from_plain(checkpoint['message_hub'])


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's :class:`CheckpointHook` whose files survive a kill at any moment.

    Checkpoints go through :class:`~detailclip.utils.checkpoint.AtomicLocalBackend` (temporary file, fsync,
    ``os.replace``) and so does the ``last_checkpoint`` pointer; the pointer moves only after the new checkpoint is
    complete, and with ``max_keep_ckpts`` the oldest checkpoint is deleted after the new one is saved, not before
    (MMEngine's order would leave no checkpoint if a save with ``max_keep_ckpts=1`` were killed). Temporary files of
    killed writes are deleted when training starts. Arguments are :class:`CheckpointHook`'s; ``backend_args``
    defaults to the atomic local backend.
    """

    def __init__(self, *args, backend_args: Optional[dict] = None, **kwargs):
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process():
            for directory in dict.fromkeys([self.out_dir, runner.work_dir]):  # checkpoints, pointer
                for path in remove_stale_temp_files(directory):
                    runner.logger.info(f'removed {path}, left by a checkpoint write that was killed')

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        dropped = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if is_main_process():
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), str(self.last_ckpt).encode())
            for old in dropped:
                self._remove(old)

    def _keep(self, runner, step: int) -> List[int]:
        """Record ``step`` among the kept checkpoints; returns the steps that drop out (deleted after the save)."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return []
        dropped = [self.keep_ckpt_ids.popleft()] if len(self.keep_ckpt_ids) == self.max_keep_ckpts else []
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return dropped

    def _remove(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are directories
            self.file_backend.rmtree(path)
