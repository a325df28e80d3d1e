"""TeacherTempHook: the per-epoch table of DINO/iBOT, the epoch from the iteration, the setter it calls."""
from types import SimpleNamespace

import numpy as np
import pytest
from torch import nn

from detailclip.engine.hooks.teacher_temp import TeacherTempHook, teacher_temp_at
from detailclip.models.objectives.ibot import IBOTObjective
from detailclip.registry import HOOKS


def reference_table(start, end, warmup_epochs, epochs):
    """iBOT main_ibot.py: np.concatenate((np.linspace(start, end, warmup), np.ones(epochs - warmup) * end))."""
    return np.concatenate((np.linspace(start, end, warmup_epochs), np.ones(epochs - warmup_epochs) * end))


@pytest.mark.parametrize('start,end,warmup_epochs', [(0.04, 0.07, 1), (0.04, 0.07, 30), (0.04, 0.04, 0),
                                                     (0.04, 0.07, 2), (0.07, 0.04, 5)])
def test_table_matches_reference(start, end, warmup_epochs):
    epochs = 40
    table = [teacher_temp_at(e, start, end, warmup_epochs) for e in range(epochs)]
    assert len(table) == epochs
    np.testing.assert_allclose(table, reference_table(start, end, warmup_epochs, epochs), rtol=1e-12)


class RecordingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = []

    def set_teacher_temp(self, **temps):
        self.calls.append(temps)


def _runner(model, iteration, iters_per_epoch=5):
    return SimpleNamespace(model=model, iter=iteration, train_dataloader=range(iters_per_epoch))


@pytest.mark.parametrize('wrapped', [False, True])
def test_hook_sets_detailclip_schedule(wrapped):
    """Defaults (DetailCLIP): cls 0.04 throughout, patch 0.04 in epoch 0 then 0.07."""
    model = RecordingModel()
    hook = HOOKS.build(dict(type='TeacherTempHook'))
    runner_model = nn.DataParallel(model) if wrapped else model  # a registered model wrapper, also on CPU
    for iteration in (0, 4, 5, 11):
        hook.before_train_iter(_runner(runner_model, iteration), batch_idx=iteration % 5)
    assert model.calls == [dict(cls=0.04, patch=0.04)] * 2 + [dict(cls=0.04, patch=0.07)] * 2


def test_hook_drives_ibot_loss_and_skips_unset():
    objective = IBOTObjective(head=dict(in_dim=8, out_dim=6, hidden_dim=8, bottleneck_dim=4))
    hook = TeacherTempHook(cls=dict(start=0.04, end=0.07, warmup_epochs=3), patch=None)
    hook.before_train_iter(_runner(objective, 2 * 7 + 3, iters_per_epoch=7), batch_idx=3)  # epoch 2
    assert objective.loss.cls_teacher_temp == pytest.approx(0.07) and objective.loss.patch_teacher_temp == 0.04
    hook.before_train_iter(_runner(objective, 7, iters_per_epoch=7), batch_idx=0)  # epoch 1
    assert objective.loss.cls_teacher_temp == pytest.approx(0.055)


def test_bad_schedules_fail_at_construction():
    with pytest.raises(ValueError, match='warmup_epochs'):
        TeacherTempHook(patch=dict(start=0.04, end=0.07, warmup_epochs=-1))
    with pytest.raises(TypeError):
        TeacherTempHook(cls=dict(start=0.04, final=0.07, warmup_epochs=1))
