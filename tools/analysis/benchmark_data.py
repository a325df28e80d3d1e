"""Data-loading throughput of each view recipe, and the share of a training step spent waiting for data.

    python tools/analysis/benchmark_data.py CONFIG [--recipes clip detailclip ...] [--num-workers N] [--batches N]
                                                   [--warmup N] [--batch-size B] [--step-time S]

Each recipe is the config's training dataset with that recipe's pipeline (the ``*_pipeline`` variables of the dataset
base configs), loaded by the config's dataloader with ``--num-workers`` workers. The step time is ``--step-time``
or, by default, the median of a few ``model.train_step`` calls of the config's own model and optimizer on a batch of
its own pipeline. With prefetching workers, a step waits for data when a batch takes longer to load than the step
takes to train: wait = max(0, batch load time - step time), share = wait / (step time + wait).
"""
import argparse
import statistics
import time
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import import_modules_from_strings

from detailclip.registry import MODELS
from detailclip.engine.config import load_config

# recipe name -> the pipeline variable of the dataset base configs that holds it
RECIPE_PIPELINES = dict(clip='train_pipeline', detailclip='two_view_pipeline', slip='slip_pipeline',
                        aclip='aclip_pipeline', multicrop='multicrop_pipeline', mae='mae_pipeline')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Samples/s of each view recipe and the data-wait share of a step')
    parser.add_argument('config', help='training config (its dataset, dataloader and model are used)')
    parser.add_argument('--recipes', nargs='+', default=list(RECIPE_PIPELINES), choices=list(RECIPE_PIPELINES))
    parser.add_argument('--num-workers', type=int, help='dataloader workers (default: the config\'s)')
    parser.add_argument('--batches', type=int, default=10, help='timed batches per recipe')
    parser.add_argument('--warmup', type=int, default=2, help='untimed batches first (worker start-up)')
    parser.add_argument('--batch-size', type=int, help='batch size (default: the config\'s)')
    parser.add_argument('--step-time', type=float, help='seconds per training step (default: measured)')
    return parser.parse_args(argv)


def recipe_loader(cfg: Config, recipe: str, num_workers: Optional[int], batch_size: Optional[int]):
    """The config's training dataloader with ``recipe``'s pipeline."""
    key = RECIPE_PIPELINES[recipe]
    if key not in cfg:
        raise KeyError(f'{cfg.filename} defines no {key} (the {recipe!r} recipe); its dataset base config must '
                       'define the *_pipeline variables of configs/_base_/datasets/synthetic_world.py')
    loader = cfg.train_dataloader.to_dict()
    loader['dataset']['pipeline'] = cfg[key]
    if num_workers is not None:
        loader.update(num_workers=num_workers, persistent_workers=num_workers > 0)
    if batch_size is not None:
        loader['batch_size'] = batch_size
    return Runner.build_dataloader(loader, seed=cfg.randomness.get('seed', 0))


def samples_per_second(loader, batches: int, warmup: int) -> float:
    """Samples/s over ``batches`` batches, after ``warmup`` untimed ones."""
    iterator = iter(loader)
    for _ in range(warmup):
        next(iterator)
    start, samples = time.perf_counter(), 0
    for _ in range(batches):
        samples += len(next(iterator)['data_samples'])
    return samples / (time.perf_counter() - start)


def measure_step_time(cfg: Config, batch: dict, repeats: int = 3) -> float:
    """Median seconds of ``model.train_step`` (preprocess, forward, backward, optimizer step) on ``batch``."""
    model = MODELS.build(cfg.model)  # constructor init: the step time does not depend on the init scheme
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train_step(batch, optim_wrapper)  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_share(batch_seconds: float, step_seconds: float) -> float:
    """Share of a step spent waiting for data when loading overlaps training."""
    wait = max(0.0, batch_seconds - step_seconds)
    return wait / (step_seconds + wait)


def benchmark(cfg: Config, args: argparse.Namespace) -> List[dict]:
    """One row per recipe: samples/s, seconds per batch, the step time and the data-wait share."""
    step = args.step_time
    if step is None:
        own = Runner.build_dataloader(dict(cfg.train_dataloader.to_dict(), num_workers=0, persistent_workers=False,
                                           **({'batch_size': args.batch_size} if args.batch_size else {})))
        step = measure_step_time(cfg, next(iter(own)))
    rows = []
    for recipe in args.recipes:
        loader = recipe_loader(cfg, recipe, args.num_workers, args.batch_size)
        rate = samples_per_second(loader, args.batches, args.warmup)
        batch_seconds = loader.batch_size / rate
        rows.append(dict(recipe=recipe, samples_per_s=rate, batch_s=batch_seconds, step_s=step,
                         wait_share=wait_share(batch_seconds, step), workers=loader.num_workers,
                         batch_size=loader.batch_size))
    return rows


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    cfg = load_config(args.config)
    init_default_scope(cfg.get('default_scope', 'detailclip'))
    import_modules_from_strings(**cfg.get('custom_imports', dict(imports=[])))
    torch.manual_seed(0)
    rows = benchmark(cfg, args)
    print(f'{"recipe":<12}{"samples/s":>11}{"s/batch":>10}{"s/step":>9}{"data wait":>11}   '
          f'(batch {rows[0]["batch_size"]}, {rows[0]["workers"]} workers, {torch.get_num_threads()} threads)')
    for r in rows:
        print(f'{r["recipe"]:<12}{r["samples_per_s"]:>11.1f}{r["batch_s"]:>10.3f}{r["step_s"]:>9.3f}'
              f'{100 * r["wait_share"]:>10.1f}%')
    return rows


if __name__ == '__main__':
    main()
