"""Pretrain a model from a config with the MMEngine Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]] [--cfg-options k=v ...]
                                 [--launcher none|pytorch|slurm] [--wandb [PROJECT]]
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from detailclip.engine.hooks.wandb import enable_wandb
from detailclip.engine.config import ConfigError, load_config, parse_runner_args
from detailclip.utils.memory import config_reuses_freed_memory, reuse_freed_memory


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Pretrain a DetailCLIP-platform model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 AMP on GPU (bf16 if the config says so), bf16 autocast on CPU')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir when no path is given')
    parser.add_argument('--wandb', nargs='?', const='detailclip', metavar='PROJECT',
                        help='also log to Weights & Biases, project PROJECT (default detailclip); WANDB_MODE=offline '
                        'works; a resumed run continues its W&B run (see detailclip/engine/hooks/wandb.py)')
    return parse_runner_args(parser, argv)


def enable_amp(cfg: Config) -> None:
    """Switch the optim wrapper to mixed precision for the device at hand (MMEngine's AMP wrapper needs a GPU)."""
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'AutocastOptimWrapper'
        wrapper.dtype = 'bfloat16'


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options."""
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        enable_amp(cfg)
    if args.wandb:
        enable_wandb(cfg, args.wandb)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except ConfigError as err:  # the message names every key and its fix; a traceback adds nothing
        raise SystemExit(f'{args.config}: {err}')
    if config_reuses_freed_memory(cfg):
        reuse_freed_memory()
    runner = Runner.from_cfg(cfg)
    runner.train()
    report(runner)


def report(runner: Runner) -> None:
    """Log the final validation metrics and where the checkpoint and logs are."""
    scalars = runner.message_hub.log_scalars
    metrics = '  '.join(f'{k[4:]}: {v.current():.2f}' for k, v in scalars.items() if k.startswith('val/'))
    if metrics:
        runner.logger.info(f'final metrics: {metrics}')
    last = osp.join(runner.work_dir, f'iter_{runner.iter}.pth')
    runner.logger.info(f'checkpoint: {last}; logs: {runner.log_dir}; scalars: '
                       f'{osp.join(runner.log_dir, "vis_data", "scalars.json")}')


if __name__ == '__main__':
    main()
