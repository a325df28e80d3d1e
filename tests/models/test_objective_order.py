"""Objectives that publish context entries run before their readers, whatever the config's key order."""
import pytest
from mmengine.config import Config

from detailclip.models.objectives.base import Objective, execution_order
from detailclip.registry import MODELS
from detailclip.testing import ROOT, shrink_model

DETAILCLIP = f'{ROOT}/configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'


def _objective(provides=(), requires=()):
    objective = Objective()
    objective.provides, objective.requires = provides, requires
    return objective


def test_execution_order_puts_providers_first_and_keeps_the_rest():
    objectives = dict(a=_objective(), reader=_objective(requires=('decoded', )), b=_objective(),
                      writer=_objective(provides=('decoded', )))
    assert execution_order(objectives) == ['a', 'b', 'writer', 'reader']


def test_missing_provider_is_a_clear_error():
    with pytest.raises(ValueError, match='decoded.*MAEObjective'):
        execution_order(dict(reader=_objective(requires=('decoded', ))))


def test_dumped_config_builds_the_same_order(tmp_path):
    """MMEngine sorts keys when it dumps a .py config (clip, ibot, mae): MAE must still run before iBOT."""
    cfg = Config.fromfile(DETAILCLIP)
    cfg.dump(tmp_path / 'dumped.py')
    dumped = Config.fromfile(tmp_path / 'dumped.py')
    assert list(dumped.model.objectives) == ['clip', 'ibot', 'mae']
    model = MODELS.build(shrink_model(dumped.model))
    assert list(model.objectives) == ['clip', 'mae', 'ibot']
