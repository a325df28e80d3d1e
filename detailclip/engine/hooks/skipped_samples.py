"""Exact counts of the training samples the data skipped, logged per epoch, and a stop when bad data floods in."""
from collections import Counter
from typing import Optional

from mmengine.dist import all_gather_object
from mmengine.hooks import CheckpointHook, Hook

from detailclip.registry import HOOKS


def _describe(counts: Counter) -> str:
    return ', '.join(f'{reason}={n}' for reason, n in sorted(counts.items())) or 'none'


@HOOKS.register_module()
class SkippedSamplesHook(Hook):
    """Sums the skip counts the datasets stamp on each sample (``data_sample.skipped``, see
    :mod:`detailclip.datasets.base`), over workers and ranks, and logs them per epoch of the training data.

    Each epoch (``len(train_dataloader)`` iterations) ends with a log line giving the skipped samples by reason, for
    the epoch and in total, and with scalars ``data/skipped`` and ``data/skipped_<reason>`` (running totals) in
    ``vis_data/scalars.json``. Rows dropped while loading the annotations are logged before training. Totals are
    saved in checkpoints and continue after a resume. When the skipped samples exceed ``max_skipped``, or their
    share of the drawn samples exceeds ``max_skip_fraction`` once ``min_samples`` were drawn, training stops with
    an error naming the reasons: a run on mostly broken data fails loudly instead of training on what is left.

    Args:
        max_skip_fraction (float): Largest share of skipped samples among drawn ones (skipped + trained); also
            applied to the rows dropped at load time.
        max_skipped (int, optional): Largest number of skipped samples.
        min_samples (int): Drawn samples before the share is checked (a few bad files early are no flood).
        interval (int): Iterations between gathers of the counts over ranks (and checks); epoch ends and the
            iterations that save a checkpoint gather too (before the checkpoint hook runs, so saved totals are exact:
            the save itself runs on rank 0 only and cannot hold a collective).
    """

    priority = 'NORMAL'

    def __init__(self, max_skip_fraction: float = 0.1, max_skipped: Optional[int] = None, min_samples: int = 1000,
                 interval: int = 50):
        self.max_skip_fraction, self.max_skipped = max_skip_fraction, max_skipped
        self.min_samples, self.interval = min_samples, interval
        self.total, self.trained = Counter(), 0
        self.epoch, self.epoch_trained, self.epoch_start = Counter(), 0, 0
        self._pending, self._pending_trained = Counter(), 0
        self._checkpoint_hooks = []

    def before_train(self, runner) -> None:
        self._checkpoint_hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook) and not h.by_epoch]
        dataset = runner.train_dataloader.dataset
        dropped = Counter(getattr(dataset, 'skipped', {}))
        self.epoch_start = runner.iter
        if not dropped:
            return
        n = sum(dropped.values())
        runner.logger.warning(f'training data: {n} annotation rows dropped while loading: {_describe(dropped)}')
        kept = len(dataset)
        if n > self.max_skip_fraction * (n + kept):
            raise RuntimeError(self._flood_message(dropped, n + kept, 'annotation rows dropped at load',
                                                   f'max_skip_fraction={self.max_skip_fraction}'))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        samples = (data_batch.get('data_samples') if isinstance(data_batch, dict) else None) or []
        for sample in samples:
            self._pending.update(getattr(sample, 'skipped', None) or {})
        self._pending_trained += len(samples)
        epoch_end = (runner.iter + 1) % len(runner.train_dataloader) == 0
        last = runner.iter + 1 >= runner.max_iters
        saves = any(h.every_n_train_iters(runner, h.interval, h.save_begin) for h in self._checkpoint_hooks)
        if epoch_end or last or saves or self.every_n_train_iters(runner, self.interval):
            self._gather()
            self._check()
        if epoch_end or last:
            self._report_epoch(runner, runner.iter + 1)

    def after_train(self, runner) -> None:
        """A run stopped early (by a hook or a fault) still reports its last, partial epoch."""
        self._gather()
        if runner.iter > self.epoch_start:
            self._report_epoch(runner, runner.iter)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the totals (rank 0 only: gathered on this iteration by :meth:`after_train_iter`)."""
        checkpoint.setdefault('meta', {})['skipped_samples'] = dict(total=dict(self.total), trained=self.trained)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('meta', {}).get('skipped_samples')
        if saved:
            self.total, self.trained = Counter(saved['total']), saved['trained']

    def _gather(self) -> None:
        """Add every rank's pending counts to the totals (a collective: all ranks call it on the same iterations)."""
        for counts, trained in all_gather_object((dict(self._pending), self._pending_trained)):
            self.total.update(counts)
            self.epoch.update(counts)
            self.trained += trained
            self.epoch_trained += trained
        self._pending, self._pending_trained = Counter(), 0

    def _check(self) -> None:
        skipped = sum(self.total.values())
        drawn = skipped + self.trained
        if self.max_skipped is not None and skipped > self.max_skipped:
            raise RuntimeError(self._flood_message(self.total, drawn, 'drawn samples skipped',
                                                   f'max_skipped={self.max_skipped}'))
        if drawn >= self.min_samples and skipped > self.max_skip_fraction * drawn:
            raise RuntimeError(self._flood_message(self.total, drawn, 'drawn samples skipped',
                                                   f'max_skip_fraction={self.max_skip_fraction}'))

    @staticmethod
    def _flood_message(counts: Counter, drawn: int, what: str, limit: str) -> str:
        return (f'the training data is mostly unusable: {sum(counts.values())} of {drawn} {what}, over the limit '
                f'{limit}: {_describe(counts)}. The warnings above name the first files of each reason. Fix the '
                'data or the dataset config (data_root, data_prefix, ann_file, layout, columns), or raise '
                'default_hooks.skipped_samples.max_skip_fraction / max_skipped.')

    def _report_epoch(self, runner, end_iter: int) -> None:
        epoch = (end_iter - 1) // len(runner.train_dataloader)
        skipped = sum(self.epoch.values())
        runner.logger.info(
            f'training data, epoch {epoch} (iterations {self.epoch_start + 1}-{end_iter}): skipped {skipped} of '
            f'{skipped + self.epoch_trained} drawn samples ({_describe(self.epoch)}); in total skipped '
            f'{sum(self.total.values())} ({_describe(self.total)})')
        scalars = {f'data/skipped_{reason}': n for reason, n in self.total.items()}
        scalars['data/skipped'] = sum(self.total.values())
        runner.visualizer.add_scalars(scalars, step=end_iter)
        self.epoch, self.epoch_trained, self.epoch_start = Counter(), 0, end_iter
