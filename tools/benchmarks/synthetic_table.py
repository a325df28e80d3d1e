"""The paper's two tables in miniature on the synthetic world: CLIP, SLIP, MaskCLIP, A-CLIP and DetailCLIP pretrained
at one budget, then zero-shot, retrieval, linear segmentation and Mask R-CNN, over seeds, with a random-init floor.

    tools/benchmarks/synthetic_table.sh    # the budget from EPOCHS, BATCH, SEEDS, SEG_ITERS, DET_ITERS, METHODS, OUT
    python tools/benchmarks/synthetic_table.py [--epochs 4] [--batch 64] [--seeds 0 1] [--seg-iters 500]
        [--det-iters 300] [--methods clip slip maskclip aclip detailclip] [--out work_dirs/synthetic_table]

Each step is one process, run in order and skipped when its work dir already has ``run_done.json`` (so a rerun
continues an interrupted table; delete OUT to start over):

1. per method and seed, ``tools/train.py configs/<method>/*vit-tiny*synthetic-world.py`` into ``OUT/<method>/seed<S>``
   with ``train_cfg.max_epochs`` (a fraction caps the iterations), ``train_dataloader.batch_size`` and
   ``randomness.seed`` overridden and no validation at start: every method gets the same epochs, batch size and
   image size (the configs share the tiny encoder's input size; checked here). The final validation in its
   scalars.json holds zero-shot top-1 and retrieval R@1/5/10.
2. per pretraining run, and once (first seed) from random init into ``OUT/random``, ``tools/downstream.py`` with the
   tiny linear probe into ``<work dir>/downstream/seg`` and the tiny Mask R-CNN 1x into ``<work dir>/downstream/det``
   (the layout tools/analysis/ablation_table.py reads), the schedules shortened to SEG_ITERS / DET_ITERS iterations
   with their shape kept (warm-up share; poly decay; lr steps at 8/12 and 11/12), validation only by the final
   test, the pretraining run's seed.
3. ``OUT/results.md``: table A (zero-shot, retrieval), table B (linear mIoU, box AP, mask AP; rows: methods and the
   random floor), each cell the mean over seeds with every seed's value, and the wall time of every step.
"""
import argparse
import glob
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from tools.analysis.ablation_table import collect, optional_scalars  # noqa: E402
from tools.analysis.benchmark import cpu_name  # noqa: E402
from tools.analysis.runs import DONE_FILE  # noqa: E402
from tools.sweep import run_once  # noqa: E402

METHODS = ('clip', 'slip', 'maskclip', 'aclip', 'detailclip')
SEG_CONFIG = 'downstream/segmentation/configs/detailclip-vit-tiny-p8_linear_1xb8-1k_synthetic-world-128x128.py'
DET_CONFIG = 'downstream/detection/configs/detailclip-vit-tiny-p8_mask-rcnn_fpn_1xb4-ms-1x_synthetic-world-128x128.py'
TASKS = ('seg', 'det')
# (header, row key of ablation_table.collect)
TABLE_A = [('zero-shot top-1', 'zero-shot/top1'), ('I2T R@1', 'retrieval/i2t_R@1'), ('I2T R@5', 'retrieval/i2t_R@5'),
           ('I2T R@10', 'retrieval/i2t_R@10'), ('T2I R@1', 'retrieval/t2i_R@1'), ('T2I R@5', 'retrieval/t2i_R@5'),
           ('T2I R@10', 'retrieval/t2i_R@10')]
TABLE_B = [('linear mIoU', 'linear mIoU'), ('box AP', 'box AP'), ('mask AP', 'mask AP')]
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']  # the final test is the evaluation


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=float, default=4, help='pretraining epochs of every method')
    parser.add_argument('--batch', type=int, default=64, help='pretraining batch size of every method')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1], help='pretraining and downstream seeds')
    parser.add_argument('--seg-iters', type=int, default=500, help='linear-probe iterations (batch 8)')
    parser.add_argument('--det-iters', type=int, default=300, help='Mask R-CNN iterations (batch 4)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), help='methods (folders under configs/)')
    parser.add_argument('--out', default='work_dirs/synthetic_table', help='work dirs and results.md')
    args = parser.parse_args(argv)
    if min(args.seg_iters, args.det_iters) < 10:
        parser.error('--seg-iters and --det-iters must be at least 10 (the warm-up is a tenth of them)')
    args.out = osp.abspath(args.out)
    return args


def method_config(method: str) -> str:
    """The method's tiny synthetic-world config (relative to the repository root)."""
    found = sorted(glob.glob(osp.join(ROOT, 'configs', method, '*vit-tiny*synthetic-world.py')))
    if len(found) != 1:
        raise SystemExit(f'configs/{method}/ holds {len(found)} *vit-tiny*synthetic-world.py configs, not one: '
                         'name a method with exactly one tiny synthetic-world config')
    return osp.relpath(found[0], ROOT)


def image_size(configs: List[str]) -> int:
    """The image encoder's input size, the same for every config (else the budget is not equal)."""
    sizes = {c: Config.fromfile(osp.join(ROOT, c)).model.image_encoder.img_size for c in configs}
    if len(set(map(str, sizes.values()))) != 1:
        raise SystemExit(f'the configs train at different image sizes {sizes}: give them one size')
    return next(iter(sizes.values()))


def pretrain_command(config: str, work_dir: str, args: argparse.Namespace, seed: int) -> List[str]:
    return [sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_epochs={args.epochs}', 'train_cfg.val_at_start=False',
            f'train_dataloader.batch_size={args.batch}', f'randomness.seed={seed}']


def seg_options(iters: int) -> List[str]:
    """The 1k linear-probe schedule (100 warm-up iterations, poly to 0) at ``iters`` iterations."""
    warmup = iters // 10
    return [f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={warmup}', f'param_scheduler.1.begin={warmup}',
            f'param_scheduler.1.end={iters}', f'default_hooks.checkpoint.interval={iters}', *NO_VALIDATION]


def det_options(iters: int) -> List[str]:
    """Mask R-CNN 1x (12 epochs of 75 iterations, 100 warm-up iterations, lr x0.1 after epochs 8 and 11) as an
    iteration-based schedule of ``iters`` iterations with the same proportions."""
    return ['train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop', f'train_cfg.max_iters={iters}',
            f'param_scheduler.0.end={iters // 9}', 'param_scheduler.1.by_epoch=False', f'param_scheduler.1.end={iters}',
            f'param_scheduler.1.milestones=[{iters * 8 // 12},{iters * 11 // 12}]', 'log_processor.by_epoch=False',
            'default_hooks.checkpoint.by_epoch=False', f'default_hooks.checkpoint.interval={iters}', *NO_VALIDATION]


def downstream_command(task: str, checkpoint: str, work_dir: str, args: argparse.Namespace, seed: int) -> List[str]:
    config, options = (SEG_CONFIG, seg_options(args.seg_iters)) if task == 'seg' else (
        DET_CONFIG, det_options(args.det_iters))
    return [sys.executable, 'tools/downstream.py', config, checkpoint, '--work-dir', work_dir, '--num-vis', '2',
            '--cfg-options', *options, f'randomness.seed={seed}']


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_step(label: str, command: List[str], work_dir: str) -> None:
    """One step through :func:`tools.sweep.run_once`, with progress; a failure stops the table."""
    print(f'== {label}: {work_dir}', flush=True)
    try:
        took = run_once(command, work_dir)
    except RuntimeError as err:
        raise SystemExit(f'{label} failed: {err}')
    print(f'   {"finished before, skipped" if took is None else f"done in {took / 60:.1f} min"}', flush=True)


def downstream_steps(name: str, checkpoint: str, work_dir: str, args: argparse.Namespace, seed: int) -> None:
    """The linear probe and Mask R-CNN of one encoder, into ``work_dir/downstream/{seg,det}``."""
    for task in TASKS:
        task_dir = osp.join(work_dir, 'downstream', task)
        run_step(f'{name}: {task}', downstream_command(task, checkpoint, task_dir, args, seed), task_dir)


def run_all(args: argparse.Namespace, configs: Dict[str, str]) -> None:
    for method, config in configs.items():
        for seed in args.seeds:
            work_dir = osp.join(args.out, method, f'seed{seed}')
            run_step(f'{method} seed {seed}: pretraining', pretrain_command(config, work_dir, args, seed), work_dir)
            downstream_steps(f'{method} seed {seed}', last_checkpoint(work_dir), work_dir, args, seed)
    downstream_steps('random init', 'random', osp.join(args.out, 'random'), args, args.seeds[0])


def seconds(work_dir: str) -> float:
    """Wall time of the step run in ``work_dir``."""
    with open(osp.join(work_dir, DONE_FILE)) as f:
        return json.load(f)['seconds']


def cell(values: List[Optional[float]]) -> str:
    """``mean (v1, v2, ...)`` over seeds, ``v`` for one seed, ``-`` when a value is missing."""
    if not values or any(v is None for v in values):
        return '-'
    if len(values) == 1:
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} ({", ".join(f"{v:.2f}" for v in values)})'


def table(columns: list, rows: Dict[str, List[dict]]) -> List[str]:
    lines = ['| method | ' + ' | '.join(h for h, _ in columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    for name, runs in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(cell([r.get(k) for r in runs]) for _, k in columns) + ' |')
    return lines


def time_table(args: argparse.Namespace) -> List[str]:
    """Wall minutes per method (all seeds) and step kind, the floor, and the total."""
    lines = ['| method | pretraining | linear seg | Mask R-CNN | total |', '|---|---|---|---|---|']
    grand = 0.0
    for method in [*args.methods, 'random init']:
        dirs = [osp.join(args.out, 'random')] if method == 'random init' else [
            osp.join(args.out, method, f'seed{s}') for s in args.seeds]
        parts = [0.0 if method == 'random init' else sum(seconds(d) for d in dirs)]
        parts += [sum(seconds(osp.join(d, 'downstream', task)) for d in dirs) for task in TASKS]
        grand += sum(parts)
        lines.append(f'| {method} | ' + ' | '.join(f'{p / 60:.1f} min' for p in [*parts, sum(parts)]) + ' |')
    lines.append(f'| all | | | | {grand / 60:.1f} min |')
    return lines


def machine() -> str:
    """The CPU model, core count and OS."""
    return f'{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}'


def results(args: argparse.Namespace, size: int) -> str:
    """results.md: the budget, the machine, tables A and B, and the wall times."""
    rows = {m: [collect(d, optional_scalars(d)) for d in (osp.join(args.out, m, f'seed{s}') for s in args.seeds)]
            for m in args.methods}
    floor = {'random init': [collect(osp.join(args.out, 'random'), [])]}
    seeds = ' '.join(map(str, args.seeds))
    out = osp.relpath(args.out, ROOT) if args.out.startswith(ROOT + os.sep) else args.out
    return '\n'.join([
        '# Synthetic-world tables', '',
        f'Command: `EPOCHS={args.epochs:g} BATCH={args.batch} SEEDS="{seeds}" SEG_ITERS={args.seg_iters} '
        f'DET_ITERS={args.det_iters} METHODS="{" ".join(args.methods)}" OUT={out} tools/benchmarks/synthetic_table.sh`',
        '', f'Budget: {args.epochs:g} epochs at batch {args.batch}, {size}-pixel views, seeds {seeds}; linear probe '
        f'{args.seg_iters} iterations, Mask R-CNN {args.det_iters} iterations. Machine: {machine()}. '
        'Cells: mean over seeds (each seed).', '',
        '## Table A: zero-shot classification and image-text retrieval (%)', '', *table(TABLE_A, rows), '',
        '## Table B: linear segmentation (mIoU) and Mask R-CNN (box / mask AP, %)', '',
        *table(TABLE_B, {**rows, **floor}), '',
        '## Wall time', '', *time_table(args), ''])


def main(argv=None) -> str:
    args = parse_args(argv)
    configs = {m: method_config(m) for m in args.methods}
    size = image_size(list(configs.values()))
    start = time.perf_counter()
    run_all(args, configs)
    text = results(args, size)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {osp.join(args.out, "results.md")} ({(time.perf_counter() - start) / 60:.1f} min this time)')
    return text


if __name__ == '__main__':
    main()
