"""The paper's tables in miniature on the synthetic world, with seed statistics and the paper's claims tested.

    tools/benchmarks/synthetic_table.sh     # SUITES, EPOCHS, BATCH, SEEDS, FLOOR_SEEDS, PROBE_IMAGES, SEG_ITERS,
                                            # DET_ITERS, OUT, QUICK
    python tools/benchmarks/synthetic_table.py [--suite methods|ablations|diagnostics] [--rows NAME ...]
        [--epochs 4] [--batch 64] [--seeds 0 1 2] [--floor-seeds 10] [--probe-images 2000] [--seg-iters 0]
        [--det-iters 0] [--quick]
        [--out work_dirs/synthetic_table] [--report FILE]

A suite (tools/benchmarks/suites.py) is a table's rows: tiny configs plus ``--cfg-options``. Per row and seed, each
step is one process, skipped when its work dir already holds ``run_done.json`` (a rerun continues an interrupted
table; delete the folder to redo a step):

1. pretraining: ``tools/train.py`` into ``OUT/<suite>/<row>/seed<S>`` at the suite run's one budget (epochs, batch,
   seed; every config trains at the same image size, checked), whose final validation gives zero-shot top-1,
   retrieval R@1/5/10 and kNN top-1;
2. the frozen-feature dense probe (``tools/dense_probe.py``: per-patch ridge regression, segmentation mIoU and box
   AP, both also on small objects, and the object probe with its image-level control) into ``.../downstream/probe``,
   on a probe world: the pretraining world's seed with ``--probe-images`` training images per dense split (a fifth as
   many val images), generated beside it on first use. The ``random`` row probes the encoder at random init (seeded
   by S), the floor, over ``--floor-seeds`` seeds (the table's seeds, then the next ones): a random init costs one
   probe, and the floor's seed spread is what the pretrained rows' margins are measured in;
3. optionally the fine-tuned tiny mmseg linear head (``--seg-iters`` > 0) and Mask R-CNN (``--det-iters`` > 0),
   their schedules shortened keeping their shape, into ``.../downstream/{seg,det}``.

Then ``OUT/<suite>/summary.json`` holds every value per row and seed of each row of the suite whose steps have all
finished, run now or before (a ``--rows`` run adds its rows to the suite's table), and the report (``--report``, default
``OUT/results.md``) is written from every summary under OUT: each suite's tables as mean ± the 95 % t-interval
half-width over seeds, paired differences against each row's baseline (* where the interval excludes 0), the margin
of every trained row over the random floor, wall times, and the claims of tools/benchmarks/claims.py.
"""
import argparse
import glob
import itertools
import json
import os
import os.path as osp
import platform
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from detailclip.datasets.synthetic_world import ensure_world  # noqa: E402
from tools.analysis.ablation_table import collect, optional_scalars  # noqa: E402
from tools.analysis.benchmark import cpu_name  # noqa: E402
from tools.analysis.runs import DONE_FILE  # noqa: E402
from tools.analysis.stats import CLEAR_MARGIN, margin, paired_interval, t_interval  # noqa: E402
from tools.benchmarks.claims import CLAIMS, claim_line  # noqa: E402
from tools.benchmarks.suites import RANDOM, SUITES, Row, Suite, build_suite  # noqa: E402
from tools.sweep import run_once  # noqa: E402

SEG_CONFIG = 'downstream/segmentation/configs/detailclip-vit-tiny-p8_linear_1xb8-1k_synthetic-world-128x128.py'
DET_CONFIG = 'downstream/detection/configs/detailclip-vit-tiny-p8_mask-rcnn_fpn_1xb4-ms-1x_synthetic-world-128x128.py'
# (header, row key of ablation_table.collect)
TEXT_METRICS = [('zero-shot top-1', 'zero-shot/top1'), ('I2T R@1', 'retrieval/i2t_R@1'),
                ('I2T R@10', 'retrieval/i2t_R@10'), ('T2I R@1', 'retrieval/t2i_R@1'),
                ('T2I R@10', 'retrieval/t2i_R@10'), ('kNN top-1', 'knn/top1')]
DENSE_METRICS = [('probe mIoU', 'probe mIoU'), ('probe mIoU small', 'probe mIoU small'),
                 ('probe box AP', 'probe box AP'), ('probe box AP small', 'probe box AP small'),
                 ('probe object top-1', 'probe object top-1'), ('probe object top-1 small', 'probe object top-1 small'),
                 ('probe image top-1', 'probe image top-1'),
                 ('linear mIoU', 'linear mIoU'), ('box AP', 'box AP'), ('mask AP', 'mask AP')]
NO_VALIDATION = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']  # the final test is the evaluation
# The knobs' defaults, and the quick mode's: CLIP and the floor at two epochs; a fourth seed narrows CLIP's interval,
# whose seed spread at two epochs decides the margin over the floor (about 15 minutes on an idle 2-core CPU)
DEFAULTS = dict(suite='methods', rows=None, epochs=4.0, seeds=[0, 1, 2], floor_seeds=10, probe_images=2000,
                seg_iters=0, det_iters=0, out='work_dirs/synthetic_table')
QUICK = dict(DEFAULTS, rows=['clip', RANDOM], epochs=2.0, seeds=[0, 1, 2, 3], out='work_dirs/synthetic_table_quick')
STEPS = ('pretraining', 'probe', 'seg', 'det')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suite', help='methods (default), ablations or diagnostics')
    parser.add_argument('--rows', nargs='+', help='only these rows of the suite (and their baselines)')
    parser.add_argument('--epochs', type=float, help='pretraining epochs of every row (default 4; a fraction caps '
                        'the iterations)')
    parser.add_argument('--batch', type=int, default=64, help='pretraining batch size of every row')
    parser.add_argument('--seeds', type=int, nargs='+', help='pretraining and downstream seeds (default 0 1 2)')
    parser.add_argument('--floor-seeds', type=int, help='random inits of the floor row (default 10; at least as many '
                        'as --seeds)')
    parser.add_argument('--probe-images', type=int, help='training images per dense split of the probe world '
                        '(default 2000)')
    parser.add_argument('--seg-iters', type=int, help='fine-tuned linear-head iterations (default 0: none)')
    parser.add_argument('--det-iters', type=int, help='fine-tuned Mask R-CNN iterations (default 0: none)')
    parser.add_argument('--world', help='the synthetic world\'s folder (default: each config\'s data_root, '
                        'data/synthetic_world, generated on first use)')
    parser.add_argument('--quick', action='store_true', help=f'the quick mode\'s defaults: {QUICK}')
    parser.add_argument('--out', help='root of the suites\' work dirs (default work_dirs/synthetic_table)')
    parser.add_argument('--report', help='the Markdown report of every suite under OUT (default OUT/results.md)')
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if any(0 < n < 10 for n in (args.seg_iters, args.det_iters)):
        parser.error('--seg-iters and --det-iters are 0 (off) or at least 10 (the warm-up is a tenth of them)')
    if args.floor_seeds < len(args.seeds):
        parser.error(f'--floor-seeds {args.floor_seeds} is fewer than the {len(args.seeds)} --seeds')
    args.out = osp.abspath(args.out)
    args.world = args.world and osp.abspath(args.world)
    args.report = args.report or osp.join(args.out, 'results.md')
    return args


def image_size(rows: List[Row]) -> int:
    """The image encoder's input size, the same for every row (else the budget is not equal)."""
    sizes = {r.name: Config.fromfile(osp.join(ROOT, r.config)).model.image_encoder.img_size for r in rows}
    if len(set(map(str, sizes.values()))) != 1:
        raise SystemExit(f'the rows train at different image sizes {sizes}: give them one size')
    return next(iter(sizes.values()))


def pretraining_world(rows: List[Row], args: argparse.Namespace) -> str:
    """``--world``, else the first row's data root; generated here when missing (the probe world is drawn like it)."""
    data_root = Config.fromfile(osp.join(ROOT, rows[0].config)).train_dataloader.dataset.data_root
    return str(ensure_world(args.world or osp.join(ROOT, data_root)))


def row_seeds(row: Row, args: argparse.Namespace) -> List[int]:
    """The seeds ``row`` runs: the table's; the floor row continues with the next unused ones to ``--floor-seeds``."""
    if row.trained:
        return list(args.seeds)
    more = (s for s in itertools.count() if s not in args.seeds)
    return [*args.seeds, *itertools.islice(more, args.floor_seeds - len(args.seeds))]


def world_options(world: Optional[str]) -> List[str]:
    """``--cfg-options`` that point every data set of a tiny config (training, the three validation loaders, the
    kNN memory bank) at ``world``; none for the configs' own data root."""
    if world is None:
        return []
    loaders = [f'{loader}.{i}' for loader in ('val_dataloader', 'test_dataloader') for i in range(3)]
    keys = ['train_dataloader', *loaders, 'val_evaluator.2.train_dataloader', 'test_evaluator.2.train_dataloader']
    return [f'{key}.dataset.data_root={world}' for key in keys]


def pretrain_command(row: Row, work_dir: str, args: argparse.Namespace, seed: int) -> List[str]:
    return [sys.executable, 'tools/train.py', row.config, '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_epochs={args.epochs}', 'train_cfg.val_at_start=False',
            f'train_dataloader.batch_size={args.batch}', f'randomness.seed={seed}', *world_options(args.world),
            *row.options]


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


def downstream_commands(row: Row, checkpoint: str, args: argparse.Namespace, seed: int) -> Dict[str, List[str]]:
    """The probe's command and, when enabled, the fine-tuned tasks', by step name (their work dir is appended)."""
    world, images = args.pretraining_world, str(args.probe_images)
    probe = [sys.executable, 'tools/dense_probe.py', checkpoint, '--config', row.config, '--seed', str(seed),
             '--data-root', f'{world}_probe{images}', '--like', world, '--probe-images', images]
    commands = dict(probe=probe)
    for task, config, iters, options in (('seg', SEG_CONFIG, args.seg_iters, seg_options),
                                         ('det', DET_CONFIG, args.det_iters, det_options)):
        if iters:
            commands[task] = [sys.executable, 'tools/downstream.py', config, checkpoint, '--num-vis', '2',
                              '--cfg-options', *options(iters), f'randomness.seed={seed}']
    return commands


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


def run_row(row: Row, seed: int, args: argparse.Namespace) -> None:
    """Pretraining (trained rows) and the downstream steps of one row and seed."""
    work_dir = seed_dir(row, seed, args)
    checkpoint = 'random'
    if row.trained:
        run_step(f'{row.name} seed {seed}: pretraining', pretrain_command(row, work_dir, args, seed), work_dir)
        checkpoint = last_checkpoint(work_dir)
    for task, command in downstream_commands(row, checkpoint, args, seed).items():
        task_dir = osp.join(work_dir, 'downstream', task)
        run_step(f'{row.name} seed {seed}: {task}', [*command, '--work-dir', task_dir], task_dir)


def step_seconds(work_dir: str) -> Dict[str, float]:
    """Wall seconds of each finished step of one row and seed."""
    dirs = dict(pretraining=work_dir, **{t: osp.join(work_dir, 'downstream', t) for t in STEPS[1:]})
    found = {}
    for step, folder in dirs.items():
        if osp.isfile(osp.join(folder, DONE_FILE)):
            with open(osp.join(folder, DONE_FILE)) as f:
                found[step] = json.load(f)['seconds']
    return found


def seed_dir(row: Row, seed: int, args: argparse.Namespace) -> str:
    """The work dir of ``row`` at ``seed``."""
    return osp.join(args.out, args.suite, row.name, f'seed{seed}')


def seed_dirs(row: Row, args: argparse.Namespace) -> List[str]:
    """The work dir of each seed of ``row``."""
    return [seed_dir(row, s, args) for s in row_seeds(row, args)]


def finished(row: Row, args: argparse.Namespace) -> bool:
    """Whether every seed of ``row`` has finished its downstream steps (they follow its pretraining)."""
    tasks = {'probe'} | {task for task, iters in (('seg', args.seg_iters), ('det', args.det_iters)) if iters}
    return all(tasks <= step_seconds(d).keys() for d in seed_dirs(row, args))


def summarize(suite: Suite, args: argparse.Namespace, size: int) -> dict:
    """The values and step times per seed of every finished row of ``suite``, the budget and the command that
    regenerates them: the suite's ``summary.json``."""
    rows = {}
    for row in filter(lambda r: finished(r, args), suite.rows):
        dirs = seed_dirs(row, args)
        rows[row.name] = dict(values=[collect(d, optional_scalars(d)) for d in dirs],
                              seconds=[step_seconds(d) for d in dirs], baseline=row.baseline, note=row.note,
                              config=row.config, options=list(row.options), trained=row.trained)
    budget = dict(epochs=args.epochs, batch=args.batch, seeds=args.seeds, floor_seeds=args.floor_seeds,
                  probe_images=args.probe_images, image_size=size,
                  seg_iters=args.seg_iters, det_iters=args.det_iters)
    return dict(suite=args.suite, title=suite.title, about=suite.about, budget=budget, machine=machine(),
                command=command_line(args, None if len(rows) == len(suite.rows) else list(rows)), rows=rows)


def machine() -> str:
    """The CPU model, core count and OS."""
    return f'{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}'


def shown_path(path: str) -> str:
    """``path`` relative to the repository root when it lies inside it (a command that runs in any clone)."""
    relative = osp.relpath(path, ROOT)
    return path if relative.startswith('..') else relative


def command_line(args: argparse.Namespace, rows: Optional[List[str]]) -> str:
    """The command that regenerates the summary of ``rows`` (None: the whole suite, no ``--rows``) at this budget."""
    selection = f' --rows {" ".join(rows)}' if rows else ''
    world = f' --world {shown_path(args.world)}' if args.world else ''
    return (f'python tools/benchmarks/synthetic_table.py --suite {args.suite}{selection} --epochs {args.epochs:g} '
            f'--batch {args.batch} --seeds {" ".join(map(str, args.seeds))} --floor-seeds {args.floor_seeds} '
            f'--probe-images {args.probe_images} --seg-iters {args.seg_iters} '
            f'--det-iters {args.det_iters}{world}')


def metric_values(summary: dict, row: str, key: str) -> Optional[List[float]]:
    """One value per seed of ``key`` in ``row``, or None where a seed lacks it."""
    values = [v.get(key) for v in summary['rows'][row]['values']]
    return None if any(v is None for v in values) else values


def present(summary: dict, columns: list, rows: List[str]) -> list:
    """The columns that some of ``rows`` measured."""
    return [(h, k) for h, k in columns if any(metric_values(summary, r, k) for r in rows)]


def value_table(summary: dict, columns: list, rows: List[str]) -> List[str]:
    """Rows x columns of ``mean ± half-width`` over seeds (``-`` where not measured)."""
    lines = ['| row | ' + ' | '.join(h for h, _ in columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    for row in rows:
        cells = [metric_values(summary, row, k) for _, k in columns]
        lines.append(f'| {row} | ' + ' | '.join(t_interval(c).format() if c else '-' for c in cells) + ' |')
    return lines


def diff_cell(a: Optional[List[float]], b: Optional[List[float]]) -> str:
    if not a or not b:
        return '-'
    diff = paired_interval(a, b)
    return diff.format(signed=True) + (' *' if diff.significant else '')


def diff_table(summary: dict, columns: list, pairs: List[tuple]) -> List[str]:
    """Paired differences ``a - b`` over seeds for each ``(a, b)`` pair, * where the interval excludes 0."""
    lines = ['| row - against | ' + ' | '.join(h for h, _ in columns) + ' |', '|' + '---|' * (len(columns) + 1)]
    for a, b in pairs:
        cells = [diff_cell(metric_values(summary, a, k), metric_values(summary, b, k)) for _, k in columns]
        lines.append(f'| {a} - {b} | ' + ' | '.join(cells) + ' |')
    return lines


def floor_lines(summary: dict, columns: list) -> List[str]:
    """Each trained row's margin over the random floor, in multiples of the half-width of Welch's interval (a random
    init shares nothing with a pretraining run of the same seed, so the two are not paired)."""
    if RANDOM not in summary['rows']:
        return []
    lines = ['Margin over random init, in half-widths of the unpaired (Welch) interval of the difference (a clear '
             f'margin is more than {CLEAR_MARGIN:g}):', '']
    for row, info in summary['rows'].items():
        if not info['trained']:
            continue
        parts = []
        for header, key in columns:
            a, b = metric_values(summary, row, key), metric_values(summary, RANDOM, key)
            found = margin(a, b) if a and b else None
            if found is not None:
                parts.append(f'{header} {found:.1f}x')
        lines.append(f'- {row}: ' + (', '.join(parts) or 'needs two seeds'))
    return lines + ['']


def time_table(summary: dict) -> List[str]:
    """Wall minutes per row and step (all seeds), and the total."""
    steps = [s for s in STEPS if any(s in t for r in summary['rows'].values() for t in r['seconds'])]
    lines = ['| row | ' + ' | '.join(steps) + ' | total |', '|' + '---|' * (len(steps) + 2)]
    grand = 0.0
    for row, info in summary['rows'].items():
        parts = [sum(t.get(s, 0.0) for t in info['seconds']) / 60 for s in steps]
        grand += sum(parts)
        lines.append(f'| {row} | ' + ' | '.join(f'{p:.1f}' for p in [*parts, sum(parts)]) + ' |')
    return lines + [f'| all | {" | " * len(steps)}{grand:.1f} |']


def probe_budget(budget: dict) -> str:
    """The probe world's size and the floor's seed count, as a clause of the budget line."""
    return (f'; probes on {budget["probe_images"]} training images per dense split, the random floor over '
            f'{budget["floor_seeds"]} inits')


def suite_section(summary: dict) -> List[str]:
    """One suite's part of the report."""
    budget, rows = summary['budget'], list(summary['rows'])
    trained = [r for r in rows if summary['rows'][r]['trained']]
    text, dense = present(summary, TEXT_METRICS, trained), present(summary, DENSE_METRICS, rows)
    pairs = [(r, i['baseline']) for r, i in summary['rows'].items() if i['baseline']]
    lines = [f'## {summary["title"]}', '', summary['about'], '', f'Command: `{summary["command"]}`', '',
             f'Budget: {budget["epochs"]:g} epochs at batch {budget["batch"]}, {budget["image_size"]}-pixel views, '
             f'{len(budget["seeds"])} seed{"s" * (len(budget["seeds"]) > 1)} ({", ".join(map(str, budget["seeds"]))})'
             f'{probe_budget(budget)}. Machine: {summary["machine"]}. '
             'Cells: mean ± half-width of the 95 % t-interval over seeds.', '']
    if text:
        lines += ['Zero-shot, retrieval and kNN (%):', '', *value_table(summary, text, trained), '']
    lines += ['Dense tasks (%):', '', *value_table(summary, dense, rows), '', *floor_lines(summary, dense)]
    if pairs:
        lines += ['Paired differences, row minus the row it changes (* : the interval excludes 0):', '',
                  *diff_table(summary, text + dense, pairs), '']
    lines += ['Rows:', ''] + [f'- `{r}`: {i["note"] or "its config"} (`{i["config"]}`'
                              + (f' with `{" ".join(i["options"])}`' if i['options'] else '') + ')'
                              for r, i in summary['rows'].items()]
    return lines + ['', 'Wall time (minutes, all seeds):', '', *time_table(summary), '']


def claims_section(summaries: Dict[str, dict]) -> List[str]:
    """Each claim's line, on the suite it needs (``not measured`` where that suite was not run)."""
    lines = ['## The paper\'s claims', '']
    for claim in CLAIMS:
        summary = summaries.get(claim.suite)
        values = {} if summary is None else {
            row: {m: metric_values(summary, row, m) for m in claim.metrics} for row in summary['rows']}
        lines.append(claim_line(claim, values))
    return lines + ['']


def report(out: str) -> str:
    """The Markdown report of every suite summary under ``out``, then the claims."""
    summaries = {}
    for path in sorted(glob.glob(osp.join(out, '*', 'summary.json'))):
        with open(path) as f:
            summary = json.load(f)
        summaries[summary['suite']] = summary
    summaries = {name: summaries[name] for name in SUITES if name in summaries}  # methods, ablations, diagnostics
    lines = ['# Synthetic-world tables', '', 'Written by `tools/benchmarks/synthetic_table.py`; the protocol, the '
             'tiny recipes and what was set for which method are in `docs/benchmark.md`. No recipe was tuned on these '
             'numbers.', '']
    for summary in summaries.values():
        lines += suite_section(summary)
    return '\n'.join(lines + claims_section(summaries))


def main(argv=None) -> str:
    args = parse_args(argv)
    suite = build_suite(args.suite, args.rows)
    size = image_size(list(suite.rows))
    start = time.perf_counter()
    args.pretraining_world = pretraining_world(list(suite.rows), args)
    for row in suite.rows:
        for seed in row_seeds(row, args):
            run_row(row, seed, args)
    with open(osp.join(args.out, args.suite, 'summary.json'), 'w') as f:
        json.dump(summarize(build_suite(args.suite), args, size), f, indent=1)
    text = report(args.out)
    os.makedirs(osp.dirname(osp.abspath(args.report)), exist_ok=True)
    with open(args.report, 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {args.report} ({(time.perf_counter() - start) / 60:.1f} min this time)')
    return text


if __name__ == '__main__':
    main()
