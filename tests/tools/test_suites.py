"""tools/benchmarks/suites.py: every row of every suite is a config that loads and validates with its options, and
the options land on the settings they name."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from detailclip.registry import MODELS
from detailclip.testing import ROOT
from detailclip.engine.config import load_config
from tools import train
from tools.benchmarks import synthetic_table
from tools.benchmarks.suites import SUITES, build_suite

ROWS = [(suite, row) for suite in SUITES for row in build_suite(suite).rows]


def row_config(row, tmp_path) -> Config:
    """The row's config as tools/train.py loads it in a table run (the table's budget options first)."""
    args = synthetic_table.parse_args(['--out', str(tmp_path)])
    command = synthetic_table.pretrain_command(row, str(tmp_path), args, seed=0)
    parsed = train.parse_args(command[2:])
    return load_config(osp.join(ROOT, parsed.config), parsed.cfg_options, work_dir=str(tmp_path))


@pytest.mark.parametrize('suite, row', ROWS, ids=[f'{s}-{r.name}' for s, r in ROWS])
def test_every_row_loads_and_validates(suite, row, tmp_path):
    cfg = row_config(row, tmp_path)
    assert cfg.train_cfg.max_epochs == 4 and cfg.train_dataloader.batch_size == 64
    if row.baseline:
        assert row.baseline in {r.name for r in build_suite(suite).rows}


def test_diagnostic_options_change_what_they_name(tmp_path):
    suite = build_suite('diagnostics')
    views = row_config(suite.row('clip+detailclip-views'), tmp_path)
    assert views.train_dataloader.dataset.pipeline[1] == dict(type='MultiView', views=['detailclip'], num_repeats=2,
                                                              size=64)
    before = row_config(suite.row('detailclip-before'), tmp_path)
    assert before.model.image_encoder.freeze_patch_embed == 'stem'
    assert before.default_hooks.ema.half_life_epochs is None and before.default_hooks.ema.momentum == 0.996
    photometric = row_config(suite.row('aclip-before+no-photometric'), tmp_path)
    assert photometric.train_dataloader.dataset.pipeline[1].student_recipe == []
    fixed = row_config(suite.row('detailclip'), tmp_path)
    assert fixed.default_hooks.ema.half_life_epochs == 0.25 and fixed.model.image_encoder.freeze_patch_embed is True


def test_frozen_stem_row_freezes_the_whole_stem(tmp_path):
    cfg = row_config(build_suite('diagnostics').row('clip+frozen-stem'), tmp_path)
    torch.manual_seed(0)
    encoder = MODELS.build(cfg.model.image_encoder)
    assert not any(p.requires_grad for p in encoder.patch_embed.parameters())


def test_rows_keep_their_baselines():
    suite = build_suite('diagnostics', ['detailclip-before+clip-only'])
    assert [r.name for r in suite.rows] == ['detailclip-before', 'detailclip-before+clip-only']
    with pytest.raises(SystemExit, match='unknown rows'):
        build_suite('methods', ['nope'])
    with pytest.raises(SystemExit, match='unknown suite'):
        build_suite('nope')
