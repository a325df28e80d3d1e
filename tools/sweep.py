"""Run a W&B sweep file locally, without W&B: every point of the sweep, one ``tools/train.py`` process each.

    python tools/sweep.py SWEEP.yaml [--work-root DIR] [--dry-run] [--max-runs N] [--seed S] [-- TRAIN ARGS ...]

The sweep files (configs/sweeps/*.yaml) are in W&B's format, so that ``wandb sweep SWEEP.yaml`` and
``wandb agent ID`` (run from the repository root) drive the same runs through W&B::

    program: tools/train.py
    method: grid                       # or random (with run_cap)
    parameters:                        # dotted config keys, passed as --cfg-options key=value
      model.masker.ratio: {values: [0.25, 0.5, 0.75]}
      model.masker.ratio_semantics: {value: remove}
    command: [${env}, ${interpreter}, ${program}, CONFIG, --cfg-options, ${args_no_hyphens}]

Here the points are expanded the way W&B does: ``grid`` is the product of every parameter's ``values`` (a ``value``
is a constant), in file order, the first ``--max-runs`` of them; ``random`` draws ``run_cap`` (or ``--max-runs``)
points with a seeded generator (``values`` with optional ``probabilities``, or ``min``/``max`` with a
``distribution`` of uniform, int_uniform or log_uniform_values; floats rounded to 4 significant digits), dropping
repeats. Every point is checked against the config (the key exists, or is an argument of a typed part; the merged
config passes tools/train.py's validation) before anything runs. Then each point runs in
``WORK_ROOT/<its settings>`` (``WORK_ROOT`` defaults to ``work_dirs/sweeps/<sweep file name>``; the name joins
``key=value`` of the parameters that vary, each key cut to its shortest unique tail of two or more parts, e.g.
``masker.ratio=0.25``), with the process's output in ``stdout.log`` there and ``WANDB_MODE=disabled``. TRAIN ARGS
after ``--`` are appended to every command (their ``--cfg-options`` override the point's). A point whose work dir
has ``run_done.json`` (written when its process exited with 0) is skipped, so an interrupted sweep resumes where it
stopped; an unfinished one runs again from the start. Paths in the sweep file are relative to the repository root,
where the processes run.

Then ``tools/analysis/ablation_table.py WORK_ROOT/*`` tabulates the points into ``WORK_ROOT/ablation.*``; run again,
it skips those files (and anything else in WORK_ROOT that holds no run).
"""
import argparse
import difflib
import itertools
import json
import math
import os
import os.path as osp
import random
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from detailclip.utils.checkpoint import atomic_write  # noqa: E402
from detailclip.engine.config import ConfigError  # noqa: E402
from tools import train  # noqa: E402
from tools.analysis.runs import DONE_FILE  # noqa: E402

SWEEP_KEYS = {'program', 'method', 'parameters', 'command', 'metric', 'name', 'description', 'project', 'entity',
              'early_terminate', 'run_cap'}
PARAMETER_KEYS = {'value', 'values', 'probabilities', 'distribution', 'min', 'max'}
DISTRIBUTIONS = {
    'uniform': lambda rng, lo, hi: rng.uniform(lo, hi),
    'int_uniform': lambda rng, lo, hi: rng.randint(lo, hi),
    'log_uniform_values': lambda rng, lo, hi: math.exp(rng.uniform(math.log(lo), math.log(hi))),
}
ARGS_MACRO = '${args_no_hyphens}'


class SweepError(ValueError):
    """The sweep file is unusable; the message names the key and the fix."""


def load_sweep(path: str) -> dict:
    """The sweep file, checked: known keys, a grid or random method, parameters W&B understands, and a command
    that runs ``${program} CONFIG ... ${args_no_hyphens}``."""
    try:
        with open(path) as f:
            sweep = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise SweepError(f'not valid YAML: {err}')
    if not isinstance(sweep, dict):
        raise SweepError('a sweep file is a YAML mapping (program, method, parameters, command)')
    unknown = sorted(set(sweep) - SWEEP_KEYS)
    if unknown:
        raise SweepError(f'unknown sweep key(s) {unknown}; a W&B sweep has {sorted(SWEEP_KEYS)}')
    missing = [k for k in ('program', 'method', 'parameters', 'command') if k not in sweep]
    if missing:
        raise SweepError(f'missing {missing} (see configs/sweeps/*.yaml)')
    if sweep['method'] not in ('grid', 'random'):
        raise SweepError(f'method {sweep["method"]!r} runs only on the W&B server; locally use grid or random')
    if not isinstance(sweep['parameters'], dict) or not sweep['parameters']:
        raise SweepError('parameters must map dotted config keys to {values: [...]} or {value: ...}')
    for key, spec in sweep['parameters'].items():
        _check_parameter(key, spec, sweep['method'])
    config_and_args(sweep)
    return sweep


def _check_parameter(key: str, spec, method: str) -> None:
    if not isinstance(spec, dict) or set(spec) - PARAMETER_KEYS:
        raise SweepError(f'parameter {key!r}: {spec!r} is not a parameter spec; use {{values: [...]}}, '
                         f'{{value: ...}} or (random only) {{min, max, distribution}}; keys: {sorted(PARAMETER_KEYS)}')
    kinds = [k for k in ('value', 'values', 'min') if k in spec]
    if len(kinds) != 1 or ('min' in spec) != ('max' in spec):
        raise SweepError(f'parameter {key!r}: give exactly one of value, values, or min and max')
    if 'values' in spec and (not isinstance(spec['values'], list) or not spec['values']):
        raise SweepError(f'parameter {key!r}: values must be a non-empty list')
    if method == 'grid' and 'min' in spec:
        raise SweepError(f'parameter {key!r}: a grid sweep needs values (min/max distributions are for random)')
    if spec.get('distribution', 'uniform') not in DISTRIBUTIONS:
        raise SweepError(f'parameter {key!r}: distribution {spec["distribution"]!r} is not supported here; '
                         f'use one of {sorted(DISTRIBUTIONS)}')


def config_and_args(sweep: dict) -> Tuple[str, List[str]]:
    """The config the command trains and the command's arguments between the config and ``${args_no_hyphens}``."""
    command = [str(c) for c in sweep['command']] if isinstance(sweep['command'], list) else []
    program = command.index('${program}') if '${program}' in command else -1
    end = command.index(ARGS_MACRO) if ARGS_MACRO in command else -1
    if program < 0 or end < program + 3 or command[end - 1] != '--cfg-options':
        raise SweepError(f'command {sweep["command"]}: it must be a list that runs ${{program}} CONFIG ... '
                         f'--cfg-options {ARGS_MACRO} (tools/train.py takes the parameters as --cfg-options key=value)')
    start = program + 1
    others = [c for c in command[:program] + command[end + 1:] if c not in ('${env}', '${interpreter}')]
    if others or osp.normpath(sweep['program']) != osp.join('tools', 'train.py'):
        raise SweepError(f'command {command} with program {sweep["program"]!r}: run locally only as [${{env}}, '
                         f'${{interpreter}}, ${{program}}, CONFIG, ..., {ARGS_MACRO}] with program tools/train.py')
    return command[start], command[start + 1:end]


def grid_points(parameters: Dict[str, dict]) -> List[dict]:
    """Every combination of the parameters' values, the last parameter varying fastest."""
    choices = [spec['values'] if 'values' in spec else [spec['value']] for spec in parameters.values()]
    return [dict(zip(parameters, combo)) for combo in itertools.product(*choices)]


def sample(spec: dict, rng: random.Random):
    """One draw of a parameter."""
    if 'value' in spec:
        return spec['value']
    if 'values' in spec:
        return rng.choices(spec['values'], weights=spec.get('probabilities'))[0]
    is_int = isinstance(spec['min'], int) and isinstance(spec['max'], int)
    draw = DISTRIBUTIONS[spec.get('distribution', 'int_uniform' if is_int else 'uniform')]
    value = draw(rng, spec['min'], spec['max'])
    return value if isinstance(value, int) else float(f'{value:.4g}')


def random_points(parameters: Dict[str, dict], count: int, seed: int) -> List[dict]:
    """``count`` seeded draws of every parameter, repeats dropped."""
    rng = random.Random(seed)
    points = [{key: sample(spec, rng) for key, spec in parameters.items()} for _ in range(count)]
    return list({json.dumps(p): p for p in points}.values())


def expand(sweep: dict, max_runs: Optional[int] = None, seed: int = 0) -> List[dict]:
    """The sweep's points (dicts of dotted key -> value)."""
    if sweep['method'] == 'grid':
        return grid_points(sweep['parameters'])[:max_runs]
    count = max_runs or sweep.get('run_cap')
    if not count:
        raise SweepError('a random sweep needs run_cap in the file or --max-runs')
    return random_points(sweep['parameters'], count, seed)


def short_keys(keys: List[str]) -> Dict[str, str]:
    """Each dotted key's shortest tail of at least two parts that no other key ends with
    (``model.objectives.mae.weight`` -> ``mae.weight``, ``model.masker.ratio`` -> ``masker.ratio``)."""
    short = {}
    for key in keys:
        parts = key.split('.')
        for n in range(min(2, len(parts)), len(parts) + 1):
            tail = '.'.join(parts[-n:])
            if not any(other != key and (other == tail or other.endswith('.' + tail)) for other in keys):
                break
        short[key] = tail
    return short


def point_name(point: dict, varying: List[str]) -> str:
    """``key=value,key=value`` of the varying parameters (``default`` when none varies), safe as a folder name."""
    names = short_keys(varying)
    text = ','.join(f'{names[k]}={point[k]}' for k in varying) or 'default'
    return re.sub(r'[^\w.,=+-]', '', text)


def train_command(sweep: dict, point: dict, work_dir: str, extra: List[str]) -> List[str]:
    """The process of one point: the sweep's command with W&B's macros filled in as W&B does."""
    config, args = config_and_args(sweep)
    return [sys.executable, sweep['program'], config, *args, *(f'{k}={v}' for k, v in point.items()),
            '--work-dir', work_dir, *extra]


def check_key(cfg: Config, key: str) -> None:
    """Raise unless ``key`` exists in ``cfg`` or names an argument of a typed part (a dict with ``type``)."""
    node, parts = cfg.to_dict(), key.split('.')
    for depth, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and 'type' in node and depth == len(parts) - 1:
            return  # validated against the part's class by tools/train.py's config check
        else:
            close = difflib.get_close_matches(part, list(node) if isinstance(node, dict) else [], n=1)
            hint = f"; did you mean '{'.'.join(parts[:depth] + close)}'?" if close else ''
            raise SweepError(f'parameter {key!r}: the config has no {".".join(parts[:depth + 1])!r}{hint}')


def check_points(sweep: dict, commands: List[List[str]]) -> None:
    """Every parameter key exists in the config and every point's config passes tools/train.py's checks."""
    config, _ = config_and_args(sweep)
    cfg = Config.fromfile(osp.join(ROOT, config))
    for key in sweep['parameters']:
        check_key(cfg, key)
    for command in commands:
        args = train.parse_args(command[2:])
        args.config = osp.join(ROOT, args.config)
        try:
            train.build_config(args)
        except ConfigError as err:
            raise SweepError(f'{" ".join(command[2:])}: {err}')


def run_once(command: List[str], work_dir: str, log_name: str = 'stdout.log') -> Optional[float]:
    """Run ``command`` in the repository root with its output in ``work_dir/log_name`` and W&B disabled, unless
    ``work_dir`` already has :data:`DONE_FILE`; write that file when the process exits with 0.

    Returns:
        The wall time in seconds, or None when the run had finished before.

    Raises:
        RuntimeError: The process failed (the message ends with its output's last lines).
    """
    done = osp.join(work_dir, DONE_FILE)
    if osp.exists(done):
        return None
    os.makedirs(work_dir, exist_ok=True)
    log = osp.join(work_dir, log_name)
    start = time.perf_counter()
    with open(log, 'w') as f:
        proc = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, WANDB_MODE='disabled'))
    seconds = time.perf_counter() - start
    if proc.returncode:
        with open(log) as f:
            tail = ''.join(f.readlines()[-15:])
        raise RuntimeError(f'exit status {proc.returncode}; see {log}; last lines:\n{tail}')
    atomic_write(done, json.dumps(dict(command=command, seconds=round(seconds, 1)), indent=2).encode())
    return seconds


def parse_args(argv=None) -> Tuple[argparse.Namespace, List[str]]:
    """The runner's arguments and the train arguments after ``--``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('sweep', help='W&B sweep file (configs/sweeps/*.yaml)')
    parser.add_argument('--work-root', help='parent of the points\' work dirs (default: work_dirs/sweeps/<name>)')
    parser.add_argument('--dry-run', action='store_true', help='print the commands, run nothing')
    parser.add_argument('--max-runs', type=int, help='at most this many points (random: this many draws)')
    parser.add_argument('--seed', type=int, default=0, help='seed of a random sweep\'s draws')
    return parser.parse_args(argv), extra


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    try:
        sweep = load_sweep(args.sweep)
        points = expand(sweep, args.max_runs, args.seed)
        root = osp.abspath(args.work_root or osp.join('work_dirs', 'sweeps', osp.splitext(osp.basename(args.sweep))[0]))
        varying = [k for k, spec in sweep['parameters'].items() if 'value' not in spec]
        runs = [(point_name(p, varying), p) for p in points]
        commands = [train_command(sweep, p, osp.join(root, name), extra) for name, p in runs]
        check_points(sweep, commands)
    except SweepError as err:
        raise SystemExit(f'{args.sweep}: {err}')
    failed = []
    for i, ((name, _), command) in enumerate(zip(runs, commands), 1):
        prefix = f'[{i}/{len(runs)}] {name}'
        if args.dry_run:
            print(f'{prefix}: {" ".join(command)}', flush=True)
            continue
        print(f'{prefix}: training in {osp.join(root, name)}', flush=True)
        try:
            seconds = run_once(command, osp.join(root, name))
        except RuntimeError as err:
            failed.append(name)
            print(f'{prefix}: FAILED, {err}', flush=True)
            continue
        print(f'{prefix}: ' + ('finished before, skipped' if seconds is None else f'done in {seconds:.0f} s'),
              flush=True)
    if failed:
        print(f'{len(failed)} of {len(runs)} point(s) failed: {", ".join(failed)}')
    elif not args.dry_run:
        print(f'all {len(runs)} point(s) finished: python tools/analysis/ablation_table.py {root}/*')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
