"""Per-epoch teacher-temperature schedule of DINO / iBOT self-distillation."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detailclip.registry import HOOKS


def teacher_temp_at(epoch: int, start: float, end: float, warmup_epochs: int) -> float:
    """Entry ``epoch`` of DINO/iBOT's table ``concat(linspace(start, end, warmup_epochs), [end] * rest)``.

    The warm-up reaches ``end`` in its last epoch; ``warmup_epochs`` 0 or 1 gives a constant ``end`` or ``start``
    for epoch 0 then ``end`` (DetailCLIP's patch temperature: 0.04, then 0.07).
    """
    if warmup_epochs < 0 or epoch < 0:
        raise ValueError(f'teacher temperature schedule: need warmup_epochs >= 0 and epoch >= 0, got '
                         f'{warmup_epochs} and {epoch}')
    if epoch >= warmup_epochs:
        return float(end)
    if warmup_epochs == 1:
        return float(start)
    return start + (end - start) * epoch / (warmup_epochs - 1)


@HOOKS.register_module()
class TeacherTempHook(Hook):
    """Sets the teacher temperatures before each iteration (DINO arXiv 2104.14294; iBOT arXiv 2111.07832).

    The epoch is ``runner.iter // len(runner.train_dataloader)``, so iteration-based loops and resumed runs get
    the same table. The model's ``set_teacher_temp(cls=..., patch=...)`` passes the values to its objectives.

    Args:
        cls (dict, optional): ``dict(start, end, warmup_epochs)`` of the CLS temperature; None: not set.
        patch (dict, optional): The same for the patch temperature (iBOT/DetailCLIP); None: not set (DINO).
    """

    priority = 'NORMAL'

    def __init__(self, cls: Optional[dict] = dict(start=0.04, end=0.04, warmup_epochs=0),
                 patch: Optional[dict] = dict(start=0.04, end=0.07, warmup_epochs=1)):
        self.schedules = {name: dict(cfg) for name, cfg in (('cls', cls), ('patch', patch)) if cfg is not None}
        for cfg in self.schedules.values():
            teacher_temp_at(0, **cfg)  # fails now on a bad schedule, not at the first iteration

    def temps(self, epoch: int) -> dict:
        """The scheduled temperatures of ``epoch``, by name."""
        return {name: teacher_temp_at(epoch, **cfg) for name, cfg in self.schedules.items()}

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.set_teacher_temp(**self.temps(runner.iter // len(runner.train_dataloader)))
