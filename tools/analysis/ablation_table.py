"""Ablation table of pretraining runs: Markdown, CSV and training curves side by side.

    python tools/analysis/ablation_table.py WORK_DIR [WORK_DIR ...] [--out PREFIX]

One row per work dir of ``tools/train.py`` (a sweep's points, an ablation family's configs):

- method and settings from the config the Runner dumped into the work dir: method = the config name's first field
  (``detailclip_vit-...`` -> ``detailclip``), the masker and its ratio (with its semantics when they are not
  ``remove``), every objective's loss weights (``weight`` and ``*_weight`` arguments, class defaults filled in) and
  ``randomness.seed``;
- zero-shot top-1 and retrieval R@1 (image-to-text, text-to-image) of the last validation in the newest run's
  ``vis_data/scalars.json``; images/s = training batch size / median iteration time;
- downstream results, when there are any, from the ``metrics.json`` that ``tools/downstream.py`` writes into its
  work dir, which for a pretraining work dir W lives at ``W/downstream/seg`` (linear probe: mIoU) and
  ``W/downstream/det`` (Mask R-CNN: box and mask AP, reported in percent as the paper does)::

      python tools/downstream.py SEG_CONFIG W/iter_N.pth --work-dir W/downstream/seg
      python tools/downstream.py DET_CONFIG W/iter_N.pth --work-dir W/downstream/det

Writes ``PREFIX.md``, ``PREFIX.csv`` and ``PREFIX_curves.png`` (training loss vs iteration, then each validation
metric vs iteration, one line per run); PREFIX defaults to ``<common parent of the work dirs>/ablation``. Paths
that hold no run are skipped with a note, so ``ablation_table.py ROOT/*`` (what tools/sweep.py prints) runs again
after it wrote ``ROOT/ablation.*``.
"""
import argparse
import csv
import json
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from detailclip.engine.config import run_settings  # noqa: E402
from detailclip.utils.numbers import round_floats  # noqa: E402
from tools.analysis.runs import dumped_config, read_scalars, train_rows, val_metrics, val_points  # noqa: E402

# (header, row key, decimals in Markdown: None for settings, shown as they are) of the table, in order
COLUMNS = [('run', 'run', None), ('method', 'method', None), ('masker', 'masker', None),
           ('mask ratio', 'mask_ratio', None), ('loss weights', 'loss_weights', None), ('seed', 'seed', None),
           ('iters', 'iters', None), ('zero-shot top-1', 'zero-shot/top1', 2), ('I2T R@1', 'retrieval/i2t_R@1', 2),
           ('T2I R@1', 'retrieval/t2i_R@1', 2), ('linear mIoU', 'linear mIoU', 2), ('box AP', 'box AP', 2),
           ('mask AP', 'mask AP', 2), ('probe mIoU', 'probe mIoU', 2),
           ('probe box AP', 'probe box AP', 2), ('images/s', 'images/s', 1)]
# downstream column -> (task folder under WORK_DIR/downstream, metric in its metrics.json, scale to percent)
DOWNSTREAM = {'linear mIoU': ('seg', 'mIoU', 1), 'box AP': ('det', 'coco/bbox_mAP', 100),
              'mask AP': ('det', 'coco/segm_mAP', 100), 'probe mIoU': ('probe', 'probe/seg_mIoU', 1),
              'probe mIoU small': ('probe', 'probe/seg_mIoU_small', 1), 'probe box AP': ('probe', 'probe/box_AP', 1),
              'probe box AP small': ('probe', 'probe/box_AP_small', 1),
              'probe object top-1': ('probe', 'probe/object_top1', 1),
              'probe object top-1 small': ('probe', 'probe/object_top1_small', 1),
              'probe image top-1': ('probe', 'probe/image_top1', 1)}
CURVE_METRICS = ('zero-shot/top1', 'retrieval/i2t_R@1', 'retrieval/t2i_R@1', 'knn/top1')


def settings_row(cfg: Config) -> dict:
    """The table's settings columns from :func:`~detailclip.engine.config.run_settings`: the ratio with its semantics
    when they are not ``remove``, the loss weights as ``'clip=1, mae=1, ibot.cls=1, ibot.patch=1'``."""
    settings = run_settings(cfg)
    ratio, semantics = settings['mask_ratio'], settings['ratio_semantics']
    return dict(method=settings['method'], masker=settings['masker'] or 'none',
                mask_ratio=ratio if semantics in (None, 'remove') else f'{ratio} ({semantics})',
                loss_weights=', '.join(f'{k}={v:g}' for k, v in settings['loss_weights'].items()),
                seed=settings['seed'])


def downstream_metrics(work_dir: str) -> Dict[str, float]:
    """The :data:`DOWNSTREAM` columns found in ``work_dir/downstream/{seg,det,probe}/metrics.json``, in percent."""
    found = {}
    for column, (task, metric, scale) in DOWNSTREAM.items():
        path = osp.join(work_dir, 'downstream', task, 'metrics.json')
        if osp.isfile(path):
            with open(path) as f:
                written = json.load(f)
            value = written.get('metrics', written).get(metric)  # tools/dense_probe.py writes its metrics flat
            if value is not None:
                found[column] = value * scale
    return found


class NoRunError(FileNotFoundError):
    """A path holds no run: no dumped config, no scalars and no downstream metrics."""


def optional_scalars(work_dir: str) -> List[dict]:
    """The newest run's scalars, or [] when the work dir has no training run (a random-init floor)."""
    try:
        return read_scalars(work_dir)
    except FileNotFoundError:
        return []


def collect(work_dir: str, rows: List[dict]) -> dict:
    """One table row: settings, the last value of every validation metric, iterations, images/s and downstream
    results of ``work_dir``, whose scalars are ``rows``."""
    cfg = dumped_config(work_dir)
    row = settings_row(cfg) if cfg is not None else {}
    train = train_rows(rows)
    for r in rows:
        if 'loss' not in r:
            row.update(val_metrics(r))
    if train:
        row['iters'] = train[-1]['iter']
    if train and cfg is not None:
        row['images/s'] = cfg.train_dataloader.batch_size / statistics.median(r['time'] for r in train)
    row.update(downstream_metrics(work_dir))
    if not row:
        raise NoRunError(f'{work_dir}: no dumped config, no */vis_data/scalars.json and no '
                         'downstream/{seg,det,probe}/metrics.json: pass work dirs of tools/train.py')
    return row


def collect_runs(paths: List[str]) -> Dict[str, Tuple[dict, List[dict]]]:
    """Path -> (table row, scalars) of every path that holds a run, in order. The others are skipped with a note:
    a glob like ``ROOT/*`` also matches files (this tool's own ``ablation.*`` when it wrote into ROOT) and folders
    that hold no run.

    Raises:
        NoRunError: None of ``paths`` holds a run.
    """
    runs = {}
    for path in paths:
        scalars = optional_scalars(path)
        try:
            runs[path] = collect(path, scalars), scalars
        except NoRunError as err:
            print(f'skipped {err}')
    if not runs:
        raise NoRunError(f'none of {paths} holds a run: pass work dirs of tools/train.py')
    return runs


def _cell(value, digits: Optional[int]) -> str:
    if value is None:
        return '-'
    return str(value) if digits is None else f'{value:.{digits}f}'


def markdown(table: List[dict]) -> str:
    """The table as Markdown."""
    lines = ['| ' + ' | '.join(h for h, _, _ in COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
    for row in table:
        lines.append('| ' + ' | '.join(_cell(row.get(k), digits) for _, k, digits in COLUMNS) + ' |')
    return '\n'.join(lines)


def _csv_cell(value, digits: Optional[int]):
    if value is None:
        return ''
    return value if digits is None else round_floats(value)


def write_csv(table: List[dict], path: str) -> None:
    """The table as CSV: settings as they are, results rounded to :data:`~detailclip.utils.numbers.DECIMALS`
    places (:func:`collect` keeps full precision for the programs that compute with it)."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow([h for h, _, _ in COLUMNS])
        for row in table:
            writer.writerow([_csv_cell(row.get(k), digits) for _, k, digits in COLUMNS])


def plot_curves(runs: Dict[str, List[dict]], path: str) -> None:
    """Training loss vs iteration, then each of :data:`CURVE_METRICS` that some run validated, one panel each side
    by side, one line per run."""
    metrics = [m for m in CURVE_METRICS if any(val_points(rows, m) for rows in runs.values())]
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(4.5 * (1 + len(metrics)), 3.5), squeeze=False)
    for name, rows in runs.items():
        train = train_rows(rows)
        axes[0, 0].plot([r['iter'] for r in train], [r['loss'] for r in train], label=name)
        for ax, metric in zip(axes[0, 1:], metrics):
            points = val_points(rows, metric)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=name)
    for ax, title in zip(axes[0], ['training loss', *metrics]):
        ax.set(title=title, xlabel='iteration')
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_names(work_dirs: List[str]) -> List[str]:
    """Each work dir relative to their common parent (the folder name for a single one)."""
    dirs = [osp.abspath(d) for d in work_dirs]
    if len(dirs) == 1:
        return [osp.basename(dirs[0])]
    common = osp.commonpath(dirs)
    return [osp.relpath(d, common) for d in dirs]


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+',
                        help='work dirs of tools/train.py (paths that hold no run, e.g. files, are skipped)')
    parser.add_argument('--out', help='output prefix (default: <common parent of the work dirs>/ablation)')
    args = parser.parse_args(argv)
    runs = collect_runs(args.work_dirs)
    out = args.out or osp.join(osp.commonpath([osp.abspath(d) for d in runs]), 'ablation')
    names = run_names(list(runs))
    table = [dict(row, run=name) for name, (row, _) in zip(names, runs.values())]
    scalars = [rows for _, rows in runs.values()]
    text = markdown(table)
    with open(f'{out}.md', 'w') as f:
        f.write(text + '\n')
    write_csv(table, f'{out}.csv')
    plot_curves(dict(zip(names, scalars)), f'{out}_curves.png')
    print(text)
    print(f'written: {out}.md, {out}.csv, {out}_curves.png')
    return table


if __name__ == '__main__':
    main()
