"""Summarise training runs from their work dirs as a Markdown table.

    python tools/analysis/summarize_runs.py WORK_DIR [WORK_DIR ...] [--metric zero-shot/top1 --metric knn/top1]

For each run (the newest log folder with a ``vis_data/scalars.json``): median seconds per iteration, the first and last
logged training loss, and each chosen validation metric at the first validation (the untrained model when the run
validated at start) and at the last.
"""
import argparse
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from tools.analysis.runs import read_scalars, train_rows  # noqa: E402


def summarize(rows: List[dict], metrics: List[str]) -> Dict[str, Optional[float]]:
    """Seconds per iteration, first/last loss and first/last value of each metric."""
    train = train_rows(rows)
    summary = dict(s_per_iter=statistics.median(r['time'] for r in train) if train else None,
                   first_loss=train[0]['loss'] if train else None, last_loss=train[-1]['loss'] if train else None,
                   iters=train[-1]['iter'] if train else 0)
    for metric in metrics:
        values = [r[metric] for r in rows if metric in r]
        summary[f'{metric} first'] = values[0] if values else None
        summary[f'{metric} last'] = values[-1] if values else None
    return summary


def markdown(summaries: Dict[str, dict]) -> str:
    """One row per run, one column per summary field."""
    keys = list(next(iter(summaries.values())))
    lines = ['| run | ' + ' | '.join(keys) + ' |', '|' + '---|' * (len(keys) + 1)]
    for name, summary in summaries.items():
        cells = ['-' if summary[k] is None else f'{summary[k]:.3g}' for k in keys]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--metric', action='append', default=None,
                        help='validation metric to report (repeatable); default zero-shot/top1 and knn/top1')
    args = parser.parse_args(argv)
    metrics = args.metric or ['zero-shot/top1', 'knn/top1']
    summaries = {osp.basename(osp.normpath(d)): summarize(read_scalars(d), metrics) for d in args.work_dirs}
    print(markdown(summaries))


if __name__ == '__main__':
    main()
