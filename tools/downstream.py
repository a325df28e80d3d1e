"""Fine-tune a pretrained image encoder on a downstream task (mmsegmentation or mmdetection config) and evaluate it.

    python tools/downstream.py CONFIG CKPT|random [--work-dir DIR] [--teacher] [--num-vis N]
                               [--cfg-options k=v ...] [--launcher none|pytorch|slurm]

CKPT is a training checkpoint (its encoder is exported first, into WORK_DIR/backbone.{pth,safetensors}), an
exported backbone (.pth with meta["encoder"], or .safetensors), or "random" (no pretrained weights). The config's
``model.backbone`` is a ``ViTBackbone``, whose ``pretrained`` is set here, or, with "random" only, any backbone of the
library (the CNN control configs). Then the mm library's Runner trains, tests, and the visualiser of the config
(SegLocalVisualizer / DetLocalVisualizer) draws ground truth and predictions of the first N test images into
WORK_DIR/vis/; the test metrics go to WORK_DIR/metrics.json.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Tuple

import mmcv
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from detailclip.converters.export import export_backbone, load_backbone, save_backbone
from detailclip.datasets.synthetic_world import ensure_world
from detailclip.engine.config import load_config, parse_runner_args
from detailclip.utils.checkpoint import atomic_write
from detailclip.utils.numbers import round_floats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Downstream fine-tuning of a pretrained image encoder')
    parser.add_argument('config', help='mmseg/mmdet config with a ViTBackbone')
    parser.add_argument('checkpoint', help='training checkpoint, exported backbone, or "random"')
    parser.add_argument('--work-dir', help='logs, checkpoints, visualisations and metrics.json (default: the '
                        'config\'s work_dir, else work_dirs/<seg|det>/<config name>/<checkpoint folder>_<checkpoint '
                        'name>, or .../random)')
    parser.add_argument('--teacher', action='store_true',
                        help='use the EMA teacher\'s encoder of a training checkpoint')
    parser.add_argument('--num-vis', type=int, default=4, help='test images to draw predictions of')
    return parse_runner_args(parser, argv)


def prepare_backbone(checkpoint: str, work_dir: str, teacher: bool) -> Tuple[Optional[str], dict]:
    """Path of the backbone weights to load (None for "random") and their meta.

    A training checkpoint is exported into ``work_dir/backbone.{pth,safetensors}`` (atomically, so several ranks may
    do it at once).
    """
    if checkpoint == 'random':
        return None, {}
    if checkpoint.endswith('.safetensors'):
        return checkpoint, load_backbone(checkpoint)[1]
    loaded = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if 'encoder' in (loaded.get('meta') or {}):
        return checkpoint, loaded['meta']
    state_dict, meta = export_backbone(loaded, 'teacher' if teacher else 'student')
    return save_backbone(state_dict, meta, osp.join(work_dir, 'backbone'))[0], meta


def default_work_dir(cfg: Config, checkpoint: str) -> str:
    """``work_dirs/<seg|det>/<config name>/<checkpoint folder>_<checkpoint name>`` (``.../random`` without a
    checkpoint), for a config loaded from its file."""
    task = {'mmseg': 'seg', 'mmdet': 'det'}.get(cfg.get('default_scope'), 'downstream')
    run = 'random' if checkpoint == 'random' else \
        f'{osp.basename(osp.dirname(osp.abspath(checkpoint)))}_{osp.splitext(osp.basename(checkpoint))[0]}'
    return osp.join('work_dirs', task, osp.splitext(osp.basename(cfg.filename))[0], run)


def build_config(args: argparse.Namespace) -> Tuple[Config, dict]:
    """The config with the backbone weights set, and the backbone's meta."""
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                      default_work_dir=lambda cfg: default_work_dir(cfg, args.checkpoint))
    backbone = cfg.model.backbone.get('type')
    if backbone != 'ViTBackbone' and args.checkpoint != 'random':
        raise ValueError(f'{args.config}: pretrained weights load into a ViTBackbone only (custom_imports=dict('
                         f'imports=[\'downstream\'])), got {backbone!r}; run another backbone (the CNN controls) with '
                         f'CKPT "random"')
    pretrained, meta = prepare_backbone(args.checkpoint, cfg.work_dir, args.teacher)
    if backbone == 'ViTBackbone':
        cfg.model.backbone.pretrained = pretrained
    if cfg.get('world_root'):
        ensure_world(cfg.world_root)
    return cfg, meta


@torch.no_grad()
def save_visualisations(runner: Runner, num: int, out_dir: str) -> list:
    """Draw ground truth and prediction of the first ``num`` test images with the config's visualiser."""
    dataset = runner.test_loop.dataloader.dataset
    visualizer = runner.visualizer
    visualizer.dataset_meta = dataset.metainfo
    runner.model.eval()
    paths = []
    for index in range(min(num, len(dataset))):
        sample = runner.model.test_step(pseudo_collate([dataset[index]]))[0]
        name = osp.splitext(osp.basename(sample.img_path))[0]
        paths.append(osp.join(out_dir, f'{name}.png'))
        visualizer.add_datasample(name, mmcv.imread(sample.img_path, channel_order='rgb'), sample, draw_gt=True,
                                  draw_pred=True, show=False, out_file=paths[-1])
    return paths


def no_detection_metrics(evaluator: dict) -> dict:
    """What mmdet's ``CocoMetric`` leaves out when the model detected nothing (it logs that the results are empty and
    returns no metric): AP 0 for each of its metric types, as COCO scores an empty result set."""
    if evaluator.get('type') != 'CocoMetric':
        return {}
    types = evaluator.get('metric', 'bbox')
    return {f'coco/{t}_mAP{s}': 0.0 for t in ([types] if isinstance(types, str) else types)
            for s in ('', '_50', '_75', '_s', '_m', '_l')}


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg, meta = build_config(args)
    runner = Runner.from_cfg(cfg)
    runner.train()
    # numpy float32 -> JSON numbers, without the float32 digits (14.289999961853027)
    metrics = round_floats(runner.test())
    empty = {} if metrics else no_detection_metrics(cfg.test_evaluator)
    metrics = metrics or empty
    if not is_main_process():
        return metrics
    vis_dir = osp.join(runner.work_dir, 'vis')
    vis = save_visualisations(runner, args.num_vis, vis_dir)
    result = dict(config=args.config, checkpoint=args.checkpoint, backbone=cfg.model.backbone.get('pretrained'),
                  backbone_meta={k: meta[k] for k in ('method', 'network', 'iter', 'epoch') if k in meta},
                  iters=runner.iter, metrics=metrics, no_detections=bool(empty), visualisations=vis)
    out = osp.join(runner.work_dir, 'metrics.json')
    atomic_write(out, json.dumps(result, indent=2).encode())
    runner.logger.info(f'metrics: {json.dumps(metrics)}, written to {out}; {len(vis)} visualisations in {vis_dir}')
    return result


if __name__ == '__main__':
    # Run as a script, this file's folder heads sys.path and the file would shadow the `downstream` package that the
    # configs import (custom_imports): take the folder off.
    sys.path = [p for p in sys.path if osp.abspath(p or '.') != osp.dirname(osp.abspath(__file__))]
    main()
