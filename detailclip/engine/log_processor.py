"""Log rows whose timings say which loop they measured."""
from mmengine.runner import LogProcessor

from detailclip.registry import LOG_PROCESSORS

TIMINGS = ('time', 'data_time')  # seconds per iteration and its data-loading part


@LOG_PROCESSORS.register_module()
class LoopTimeLogProcessor(LogProcessor):
    """MMEngine's :class:`LogProcessor` with the timings of a validation or test row under ``val/time``,
    ``val/data_time`` (``test/...``) instead of the training rows' ``time`` and ``data_time``.

    MMEngine writes both under the same keys, so ``scalars.json``, W&B and TensorBoard draw one ``time`` chart that
    mixes training iterations with evaluation batches (of other sizes and cost). Arguments are
    :class:`LogProcessor`'s.
    """

    def get_log_after_epoch(self, runner, batch_idx: int, mode: str, with_non_scalar: bool = False):
        tag, log_str = super().get_log_after_epoch(runner, batch_idx, mode, with_non_scalar)
        return {f'{mode}/{k}' if k in TIMINGS else k: v for k, v in tag.items()}, log_str
