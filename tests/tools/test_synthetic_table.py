"""tools/benchmarks/synthetic_table.py: its shortened downstream schedules land on the tiny configs' keys, and its
cells. (The whole command is checked end to end with a tiny budget by hand: docs/results.md.)"""
import os.path as osp

from mmengine.config import Config

from detailclip.testing import ROOT
from tools import downstream
from tools.benchmarks import synthetic_table


def _config(path: str, options: list) -> Config:
    """``path`` with ``options`` merged the way tools/downstream.py parses and merges --cfg-options."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.merge_from_dict(downstream.parse_args([path, 'random', '--cfg-options', *options]).cfg_options)
    return cfg


def test_seg_schedule():
    cfg = _config(synthetic_table.SEG_CONFIG, synthetic_table.seg_options(500))
    warmup, poly = cfg.param_scheduler
    assert cfg.train_cfg.max_iters == 500 and cfg.default_hooks.checkpoint.interval == 500
    assert (warmup.type, warmup.end, poly.type, poly.begin, poly.end) == ('LinearLR', 50, 'PolyLR', 50, 500)
    assert cfg.val_cfg is None and cfg.val_dataloader is None and cfg.val_evaluator is None


def test_det_schedule():
    cfg = _config(synthetic_table.DET_CONFIG, synthetic_table.det_options(300))
    warmup, steps = cfg.param_scheduler
    assert cfg.train_cfg.to_dict() == dict(type='IterBasedTrainLoop', max_iters=300)
    assert (warmup.type, warmup.end, warmup.by_epoch) == ('LinearLR', 33, False)
    assert (steps.type, steps.by_epoch, steps.end, steps.milestones) == ('MultiStepLR', False, 300, [200, 275])
    assert not cfg.log_processor.by_epoch and not cfg.default_hooks.checkpoint.by_epoch
    assert cfg.val_cfg is None and cfg.test_dataloader is not None


def test_cells():
    assert synthetic_table.cell([12.0, 14.5]) == '13.25 (12.00, 14.50)'
    assert synthetic_table.cell([7.5]) == '7.50'
    assert synthetic_table.cell([7.5, None]) == synthetic_table.cell([]) == '-'
