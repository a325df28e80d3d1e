"""tools/benchmarks/synthetic_table.py: its shortened downstream schedules land on the tiny configs' keys, the report
(intervals, paired differences, the floor margin, the claims) from seed values on disk, and the quick mode end to
end at its smallest size."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from detailclip.testing import ROOT
from tools import downstream
from tools.analysis.stats import paired_interval, t_interval, welch_interval
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


def test_quick_mode_defaults_and_overrides():
    args = synthetic_table.parse_args(['--quick', '--seeds', '4', '5'])
    assert (args.rows, args.epochs, args.seeds) == (['clip', 'random'], 2.0, [4, 5])
    assert args.out.endswith('work_dirs/synthetic_table_quick')
    assert synthetic_table.parse_args([]).seeds == [0, 1, 2]
    with pytest.raises(SystemExit):
        synthetic_table.parse_args(['--seeds', '0', '1', '2', '--floor-seeds', '2'])


def test_the_floor_row_continues_the_tables_seeds():
    args = synthetic_table.parse_args(['--seeds', '4', '0', '--floor-seeds', '5'])
    clip, random = (synthetic_table.build_suite('methods').row(name) for name in ('clip', 'random'))
    assert synthetic_table.row_seeds(clip, args) == [4, 0]
    assert synthetic_table.row_seeds(random, args) == [4, 0, 1, 2, 3]


def _summary(values: dict) -> dict:
    rows = {name: dict(values=[{'probe mIoU': v, 'retrieval/i2t_R@1': v / 2} if name != 'random' else
                               {'probe mIoU': v} for v in seeds],
                       seconds=[dict(pretraining=60.0, probe=6.0)] * len(seeds), baseline=baseline, note='',
                       config='configs/x.py', options=[], trained=name != 'random')
            for name, (seeds, baseline) in values.items()}
    return dict(suite='methods', title='Methods', about='About.', budget=dict(
        epochs=4, batch=64, seeds=[0, 1, 2], floor_seeds=3, probe_images=300, image_size=64, seg_iters=0,
        det_iters=0), machine='cpu',
        command='python tools/benchmarks/synthetic_table.py', rows=rows)


def test_report_from_summaries(tmp_path):
    values = {'clip': ([20.0, 22.0, 21.0], None), 'detailclip': ([24.0, 25.5, 24.5], 'clip'),
              'random': ([5.0, 6.0, 5.5], None)}
    (tmp_path / 'methods').mkdir()
    (tmp_path / 'methods' / 'summary.json').write_text(json.dumps(_summary(values)))
    text = synthetic_table.report(str(tmp_path))
    assert f'| detailclip | {t_interval([24.0, 25.5, 24.5]).format()} |' in text
    diff = paired_interval([24.0, 25.5, 24.5], [20.0, 22.0, 21.0])
    assert '| detailclip - clip | ' in text and f'{diff.format(signed=True)} *' in text  # significant
    floor = welch_interval([20.0, 22.0, 21.0], [5.0, 6.0, 5.5])
    assert f'- clip: probe mIoU {floor.mean / floor.half:.1f}x' in text
    assert '- **DetailCLIP is ahead of CLIP on segmentation: inconclusive.**' in text  # small objects not measured
    assert 'probe mIoU small: not measured' in text
    assert '- **The pixel term adds to dense quality: not measured**' in text  # the ablations suite was not run
    assert text.split('| all |')[1].split('\n')[0].endswith(' 9.9 |')  # 3 rows x 3 seeds x 66 s


def test_a_rows_run_keeps_the_suites_finished_rows(tmp_path):
    """The summary holds every row whose seeds have all finished, run now or by an earlier ``--rows`` run, and the
    command that regenerates exactly those rows."""
    args = synthetic_table.parse_args(['--suite', 'ablations', '--rows', 'no-pixel', '--seeds', '0', '1',
                                       '--floor-seeds', '2', '--out', str(tmp_path)])
    suite = synthetic_table.build_suite('ablations')
    for name, seeds in (('detailclip', (0, 1)), ('no-pixel', (0, 1)), ('random-mask', (0,))):  # random-mask: half
        for seed in seeds:
            probe = tmp_path / 'ablations' / name / f'seed{seed}' / 'downstream' / 'probe'
            probe.mkdir(parents=True)
            (probe / 'metrics.json').write_text(json.dumps({'probe/seg_mIoU': 10.0 + seed}))
            (probe / synthetic_table.DONE_FILE).write_text(json.dumps({'seconds': 30.0}))
    summary = synthetic_table.summarize(suite, args, 64)
    assert list(summary['rows']) == ['detailclip', 'no-pixel']
    assert [v['probe mIoU'] for v in summary['rows']['no-pixel']['values']] == [10.0, 11.0]
    assert ' --rows detailclip no-pixel ' in summary['command']
    assert not synthetic_table.finished(suite.row('random-mask'), args)
    assert ' --rows ' not in synthetic_table.command_line(args, None)


def test_commands_name_worlds_inside_the_repository_relative_to_it():
    assert synthetic_table.shown_path(osp.join(ROOT, 'data', 'synthetic_world_seed7331')) == osp.join(
        'data', 'synthetic_world_seed7331')
    assert synthetic_table.shown_path('/elsewhere/world') == '/elsewhere/world'


@pytest.mark.slow
def test_quick_mode_at_its_smallest(tiny_world, tmp_path, capsys):
    argv = ['--quick', '--epochs', '0.2', '--batch', '8', '--seeds', '0', '1', '--floor-seeds', '3',
            '--probe-images', '10', '--world', tiny_world, '--out', str(tmp_path)]
    text = synthetic_table.main(argv)
    summary = json.loads((tmp_path / 'methods' / 'summary.json').read_text())
    assert set(summary['rows']) == {'clip', 'random'}
    for seed in (0, 1):
        checkpoint = synthetic_table.last_checkpoint(str(tmp_path / 'methods' / 'clip' / f'seed{seed}'))
        assert checkpoint.endswith('iter_2.pth')
    assert len(summary['rows']['random']['values']) == 3  # the floor over 3 random inits
    for seed_values in summary['rows']['clip']['values'] + summary['rows']['random']['values']:
        for metric in ('probe mIoU', 'probe box AP', 'probe object top-1', 'probe image top-1'):
            assert 0 <= seed_values[metric] <= 100, metric
    with open(f'{tiny_world}_probe10/meta.json') as probe, open(f'{tiny_world}/meta.json') as pretraining:
        probe, pretraining = json.load(probe), json.load(pretraining)
    assert (probe['splits']['ade_train'], probe['splits']['coco_val'], probe['splits']['pretrain']) == (10, 2, 0)
    assert [probe[k] for k in ('seed', 'image_size')] == [pretraining[k] for k in ('seed', 'image_size')]
    assert '- clip: probe mIoU' in text and (tmp_path / 'results.md').read_text() == text
    capsys.readouterr()
    synthetic_table.main(argv)  # resumed: every step had finished
    assert capsys.readouterr().out.count('finished before, skipped') == 7
