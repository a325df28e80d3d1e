"""Reading MMEngine work dirs, shared by the run summaries (summarize_runs.py, ablation_table.py).

A work dir holds one folder per run (``<timestamp>/vis_data/scalars.json``: one JSON object per line; training rows
carry ``iter``, ``loss`` and their ``time``, validation rows the metrics as ``task/metric`` and their timings as
``val/time`` and ``val/data_time``), the config the Runner dumped (``<config name>.py``) and,
once a run launched by tools/sweep.py ended well, :data:`DONE_FILE`.
"""
import glob
import json
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config

DONE_FILE = 'run_done.json'  # {"command": [...], "seconds": wall time}, written when the run's process exited with 0


def read_scalars(work_dir: str) -> List[dict]:
    """The rows of the newest ``scalars.json`` under ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}: is it an MMEngine work dir?')
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_rows(rows: List[dict]) -> List[dict]:
    """The training rows (those with a ``loss``)."""
    return [r for r in rows if 'loss' in r]


def val_metrics(row: dict) -> dict:
    """The metrics of a validation row (``task/metric`` keys), without its timings."""
    return {k: v for k, v in row.items() if '/' in k and not k.startswith('val/')}


def val_points(rows: List[dict], metric: str) -> List[Tuple[int, float]]:
    """``(iteration, value)`` of every validation of ``metric``. Validation rows carry no iteration (MMEngine logs
    them at step = epoch): each gets the iteration of the last training row logged before it (0 before any), which
    is exact up to the logger interval."""
    points, last_iter = [], 0
    for row in rows:
        if 'loss' in row:
            last_iter = row['iter']
        elif metric in row:
            points.append((last_iter, row[metric]))
    return points


def dumped_config(work_dir: str) -> Optional[Config]:
    """The config the Runner dumped into ``work_dir`` (``<config name>.py`` or ``.json``; the newest if there are
    several), or None."""
    files = glob.glob(osp.join(work_dir, '*.py')) + glob.glob(osp.join(work_dir, '*.json'))
    files = [f for f in files if osp.basename(f) != DONE_FILE]
    if not files:
        return None
    return Config.fromfile(max(files, key=osp.getmtime), import_custom_modules=False)
