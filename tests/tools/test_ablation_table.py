"""tools/analysis/ablation_table.py (and the scalars reader it shares with summarize_runs.py) on work dirs written
here in the files' real formats: MMEngine's scalars.json lines, the config the Runner dumps, tools/downstream.py's
metrics.json."""
import csv
import glob
import json
import os
import os.path as osp

import matplotlib.image
import pytest
from mmengine.config import Config

from detailclip.testing import ROOT, TINY_CLIP
from tools.analysis import ablation_table, summarize_runs
from tools.analysis.runs import read_scalars, val_points

DETAILCLIP = osp.join(ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
VAL_KEYS = ('zero-shot/top1', 'retrieval/i2t_R@1', 'retrieval/t2i_R@1', 'knn/top1')
NOISY = 25.000000949949026  # a float32 metric read back as a float64


def _val_row(value: float) -> dict:
    return {**{k: value for k in VAL_KEYS}, 'val/data_time': 0.5, 'val/time': 0.6, 'step': 0}


def _train_row(it: int, time: float) -> dict:
    return dict(lr=1e-4, data_time=0.01, loss=5.0 - it / 10, loss_clip=5.0 - it / 10, time=time, iter=it, step=it)


def _work_dir(tmp_path, name: str, config: str, times: list, final: float, **options) -> str:
    """A pretraining work dir as tools/train.py leaves it: an older run, the newest run (validation at start,
    training rows every 10 iterations, final validation) and the dumped config with ``options`` merged."""
    work_dir = tmp_path / name
    rows = [_val_row(12.5)] + [_train_row(10 * (i + 1), t) for i, t in enumerate(times)] + [_val_row(final)]
    for stamp, run_rows in (('20260101_000000', rows[:2]), ('20260102_000000', rows)):
        (work_dir / stamp / 'vis_data').mkdir(parents=True)
        (work_dir / stamp / 'vis_data' / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in run_rows))
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.dump(str(work_dir / osp.basename(config)))
    return str(work_dir)


def _downstream(work_dir: str, task: str, metrics: dict) -> None:
    """tools/downstream.py's metrics.json in ``work_dir/downstream/task``."""
    path = osp.join(work_dir, 'downstream', task)
    os.makedirs(path)
    with open(osp.join(path, 'metrics.json'), 'w') as f:
        json.dump(dict(config='x.py', checkpoint='iter_40.pth', iters=20, metrics=metrics), f)


@pytest.fixture
def work_dirs(tmp_path):
    clip = _work_dir(tmp_path / 'runs', 'clip', TINY_CLIP, [0.5, 0.4, 0.6, 0.5], final=20.0,
                     **{'randomness.seed': 1, 'train_dataloader.batch_size': 64})
    detail = _work_dir(tmp_path / 'runs', 'detailclip', DETAILCLIP, [0.8, 0.8, 0.9], final=NOISY,
                       **{'model.objectives.mae.weight': 0.5})
    _downstream(detail, 'seg', {'aAcc': 20.0, 'mIoU': 7.5, 'mAcc': 15.0})
    _downstream(detail, 'det', {'coco/bbox_mAP': 0.012, 'coco/segm_mAP': 0.008, 'coco/bbox_mAP_50': 0.03})
    floor = str(tmp_path / 'runs' / 'random')
    _downstream(floor, 'seg', {'mIoU': 4.0})
    probe = osp.join(detail, 'downstream', 'probe')  # tools/dense_probe.py writes its metrics flat
    os.makedirs(probe)
    with open(osp.join(probe, 'metrics.json'), 'w') as f:
        json.dump({'probe/seg_mIoU': 9.5, 'probe/box_AP': 2.25, 'seconds': 9.0}, f)
    return clip, detail, floor


def test_table_csv_and_curves(work_dirs, tmp_path):
    out = str(tmp_path / 'table')
    table = ablation_table.main([*work_dirs, '--out', out])
    clip, detail, floor = table
    assert [r['run'] for r in table] == ['clip', 'detailclip', 'random']
    assert clip['method'] == 'clip' and clip['masker'] == 'none' and clip['seed'] == 1
    assert clip['loss_weights'] == 'clip=1' and clip['iters'] == 40
    assert clip['images/s'] == pytest.approx(64 / 0.5)  # batch / median iteration time
    assert clip['zero-shot/top1'] == 20.0 and clip['retrieval/t2i_R@1'] == 20.0  # the last validation
    assert 'val/time' not in clip and 'val/data_time' not in clip  # timings are not results
    assert 'linear mIoU' not in clip
    assert detail['method'] == 'detailclip' and detail['masker'] == 'AttentionMask'
    assert detail['mask_ratio'] == '0.5 (keep_plus_one)'
    assert set(detail['loss_weights'].split(', ')) == {'clip=1', 'mae=0.5', 'ibot.cls=1', 'ibot.patch=1'}
    assert detail['images/s'] == pytest.approx(64 / 0.8) and detail['zero-shot/top1'] == NOISY  # full precision
    assert detail['linear mIoU'] == 7.5
    assert detail['box AP'] == pytest.approx(1.2) and detail['mask AP'] == pytest.approx(0.8)  # percent
    assert floor == {'run': 'random', 'linear mIoU': 4.0}

    lines = open(f'{out}.md').read().splitlines()
    assert lines[0].startswith('| run | method | masker | mask ratio | loss weights | seed |') and len(lines) == 5
    assert '| detailclip | detailclip | AttentionMask | 0.5 (keep_plus_one) |' in lines[3]
    assert lines[3].endswith('| 25.00 | 25.00 | 25.00 | 7.50 | 1.20 | 0.80 | 9.50 | 2.25 | 80.0 |')
    assert lines[4].startswith('| random | - | - |')
    with open(f'{out}.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['run'] for r in rows] == ['clip', 'detailclip', 'random']
    assert float(rows[1]['box AP']) == pytest.approx(1.2) and rows[0]['linear mIoU'] == ''
    assert rows[1]['zero-shot top-1'] == '25.0' and rows[1]['images/s'] == '80.0'  # rounded for people
    assert rows[1]['mask ratio'] == '0.5 (keep_plus_one)' and rows[0]['seed'] == '1'  # settings as they are
    image = matplotlib.image.imread(f'{out}_curves.png')
    assert image.ndim == 3 and image.shape[1] > 2 * image.shape[0]  # panels side by side


def test_default_prefix_and_errors(work_dirs, tmp_path):
    ablation_table.main(list(work_dirs[:2]))
    assert osp.exists(tmp_path / 'runs' / 'ablation.md') and osp.exists(tmp_path / 'runs' / 'ablation_curves.png')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='pass work dirs of tools/train.py'):
        ablation_table.main([str(tmp_path / 'empty')])


def test_rerun_over_a_glob_skips_its_own_output(work_dirs, tmp_path, capsys):
    """tools/sweep.py prints ``ablation_table.py ROOT/*``; the first run writes ROOT/ablation.*, which the same glob
    then matches: the second run skips them (and a folder of no run) and writes the same table."""
    root = tmp_path / 'runs'
    first = ablation_table.main(sorted(glob.glob(str(root / '*'))))
    (root / 'notes').mkdir()
    paths = sorted(glob.glob(str(root / '*')))
    assert {'ablation.md', 'ablation.csv', 'ablation_curves.png', 'notes'} <= {osp.basename(p) for p in paths}
    text = (root / 'ablation.md').read_text()
    assert ablation_table.main(paths) == first
    assert (root / 'ablation.md').read_text() == text
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith('skipped')]
    assert len(skipped) == 4 and all('pass work dirs of tools/train.py' in line for line in skipped)


def test_shared_reader(work_dirs):
    rows = read_scalars(work_dirs[0])  # the newest run
    assert len(rows) == 6
    assert val_points(rows, 'zero-shot/top1') == [(0, 12.5), (40, 20.0)]
    summary = summarize_runs.summarize(rows, ['zero-shot/top1'])
    assert summary['iters'] == 40 and summary['s_per_iter'] == 0.5
    assert summary['zero-shot/top1 first'] == 12.5 and summary['zero-shot/top1 last'] == 20.0
