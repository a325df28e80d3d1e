"""Evaluate a checkpoint (zero-shot classification, retrieval) with the config's test tasks.

    python tools/test.py CONFIG CKPT [--work-dir DIR] [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

Writes ``metrics.json`` (the MMEngine metrics, percent, rounded to 4 decimals for people) and, per evaluated dataset
and network (student, teacher), a CLIP_benchmark-style JSON (fractions) under ``benchmark/`` in the run's log directory
(:class:`~detailclip.evaluation.BenchmarkJSONHook`). Full-precision values are in MMEngine's ``<timestamp>.json`` there.
"""
import argparse
import json
import os.path as osp

from mmengine.runner import Runner

from detailclip.engine.config import load_config, parse_runner_args
from detailclip.utils.checkpoint import atomic_write
from detailclip.utils.numbers import round_floats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a DetailCLIP-platform checkpoint')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and the metrics JSON go')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.default_hooks.setdefault('benchmark_json', dict(type='BenchmarkJSONHook'))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    out = osp.join(runner.log_dir, 'metrics.json')
    atomic_write(out, json.dumps(round_floats(metrics), indent=2).encode())
    runner.logger.info(f'metrics written to {out}')
    return metrics


if __name__ == '__main__':
    main()
