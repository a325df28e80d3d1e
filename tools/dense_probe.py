"""Frozen-feature dense probes of an image encoder on the synthetic world: segmentation mIoU, box AP and object
top-1 (with its image-level control) of ridge regressions on its patch features, in seconds
(detailclip/evaluation/dense_probe.py defines them).

    python tools/dense_probe.py CKPT|random [--config CFG] [--seed 0] [--teacher] [--data-root data/synthetic_world]
                                [--probe-images N --like WORLD] [--layers 4] [--image-size S] --work-dir DIR

CKPT is a training checkpoint (its student's image encoder, or with --teacher its EMA teacher's), an exported backbone
(.pth with meta["encoder"], or .safetensors), or "random": the image encoder of the pretraining config --config,
initialised under --seed. The encoder sees the dense images at the size it was trained at (its grid), or at
--image-size with its pos_embed resized; inputs are normalised as the pretraining data preprocessor does (ImageNet
statistics unless the config says otherwise). The world is generated into --data-root when missing; with
--probe-images N and --like WORLD it is a probe world: WORLD's seed, image size and classification split, N training
and N / 5 val images in each dense split, no pretraining or retrieval split. Writes DIR/metrics.json (flat
``probe/*`` keys, full precision: the seed statistics of tools/benchmarks/synthetic_table.py compute with them) and
prints one summary line (2 decimals).
"""
import argparse
import json
import os.path as osp
import time
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from detailclip.datasets.synthetic_world import SHAPES, ensure_world
from detailclip.evaluation.dense_probe import DenseData, read_dense_data, run_dense_probes
from detailclip.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from detailclip.models.encoders.vit import VisionTransformer
from detailclip.utils.checkpoint import atomic_write
from detailclip.converters.export import (build_encoder, encoder_kwargs, export_backbone, grid_of, load_backbone,
                                     load_strict, resize_pos_embed, training_meta)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Frozen-feature dense probes (ridge regression on patch features)')
    parser.add_argument('checkpoint', help='training checkpoint, exported backbone (.pth/.safetensors), or "random"')
    parser.add_argument('--config', help='pretraining config: the encoder built for "random"; the training config of '
                        'a checkpoint that carries none, or the architecture of a bare encoder state dict')
    parser.add_argument('--seed', type=int, default=0, help='seed of the "random" initialisation')
    parser.add_argument('--teacher', action='store_true',
                        help='probe the EMA teacher\'s encoder of a training checkpoint')
    parser.add_argument('--data-root', default='data/synthetic_world', help='the synthetic world, generated if missing')
    parser.add_argument('--probe-images', type=int, help='dense training images of a probe world generated here')
    parser.add_argument('--like', help='the world whose seed, image size and classification split a probe world has')
    parser.add_argument('--layers', type=int, default=4, help='last blocks whose patch tokens are concatenated')
    parser.add_argument('--image-size', type=int, help='input size of the encoder (default: its trained img_size)')
    parser.add_argument('--work-dir', required=True, help='where metrics.json is written')
    args = parser.parse_args(argv)
    if (args.probe_images is None) != (args.like is None):
        raise SystemExit('dense_probe: --probe-images and --like go together (the probe world\'s dense split size and '
                         'the world it is drawn like)')
    if args.checkpoint == 'random' and not args.config:
        raise SystemExit('dense_probe: "random" needs --config, the pretraining config whose image encoder to build')
    return args


def _load_torch(path: str):
    """A torch checkpoint's contents; None for safetensors, which :func:`load_backbone` reads."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} not found')
    if path.endswith('.safetensors'):
        return None
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickle, zip and torch errors alike: whatever it is, it is not a checkpoint we read
        raise ValueError(f'{path}: unknown checkpoint format ({type(e).__name__}: {e})') from e


def encoder_source(args: argparse.Namespace) -> Tuple[dict, dict, Optional[Config]]:
    """The encoder's state dict at its trained size, its build arguments and the pretraining config (if known)."""
    cfg = Config.fromfile(args.config) if args.config else None
    if args.checkpoint == 'random':
        kwargs = encoder_kwargs(cfg.model.image_encoder)
        torch.manual_seed(args.seed)
        return build_encoder(kwargs).state_dict(), kwargs, cfg
    loaded = _load_torch(args.checkpoint)
    if isinstance(loaded, dict) and 'state_dict' in loaded and 'encoder' not in (loaded.get('meta') or {}):
        cfg = training_meta(loaded, cfg)[0]
        state_dict, meta = export_backbone(loaded, 'teacher' if args.teacher else 'student', config=cfg)
        return state_dict, meta['encoder'], cfg
    state_dict, meta = load_backbone(args.checkpoint)
    if 'encoder' not in meta and cfg is None:
        raise ValueError(f'{args.checkpoint}: unknown checkpoint format: neither a training checkpoint nor an exported '
                         'backbone with meta["encoder"] (pass --config to read it as a bare encoder state dict)')
    return state_dict, meta.get('encoder') or encoder_kwargs(cfg.model.image_encoder), cfg


def probe_encoder(state_dict: dict, kwargs: dict, image_size: Optional[int] = None) -> VisionTransformer:
    """The encoder in eval mode, built for ``image_size`` inputs (its trained size when None) with its ``pos_embed``
    resized from the trained grid."""
    patch = kwargs.get('patch_size', 16)
    image_size = image_size or kwargs.get('img_size', 224)
    state_dict = resize_pos_embed(state_dict, grid_of(image_size, patch), grid_of(kwargs.get('img_size', 224), patch))
    encoder = build_encoder(kwargs, img_size=image_size)
    load_strict(encoder, state_dict, 'image encoder')
    return encoder.eval()


def input_stats(cfg: Optional[Config]) -> Tuple[Sequence[float], Sequence[float]]:
    """Mean and std (0-255 scale) of the pretraining data preprocessor: the config's, else its defaults."""
    preprocessor = (cfg.model.get('data_preprocessor') if cfg is not None else None) or {}
    return preprocessor.get('mean', IMAGENET_MEAN), preprocessor.get('std', IMAGENET_STD)


def summary(metrics: dict, seconds: float) -> str:
    """One line of the main metrics."""
    text = {k: 'n/a' if v is None else f'{v:.2f}' for k, v in metrics.items()}
    return (f'seg mIoU {text["probe/seg_mIoU"]} (small {text["probe/seg_mIoU_small"]}), box AP {text["probe/box_AP"]} '
            f'AP50 {text["probe/box_AP50"]} AP_small {text["probe/box_AP_small"]}, object top-1 '
            f'{text["probe/object_top1"]} (small {text["probe/object_top1_small"]}), image top-1 '
            f'{text["probe/image_top1"]}, {metrics["probe/feature_dim"]}-d features, {seconds:.1f} s')


def probe_world(like: str, images: int) -> dict:
    """:func:`generate_world` arguments of a probe world: the seed, image size and classification split of the world
    at ``like``, ``images`` training and ``images // 5`` val images per dense split, nothing to pretrain on."""
    with open(osp.join(like, 'meta.json')) as f:
        meta = json.load(f)
    per_class = {f'num_cls_{split}_per_class': meta['splits'][f'classification_{split}'] // len(SHAPES)
                 for split in ('train', 'val')}
    return dict(seed=meta['seed'], image_size=meta['image_size'], num_train=0, num_retrieval=0, **per_class,
                num_seg_train=images, num_seg_val=images // 5, num_det_train=images, num_det_val=images // 5)


def load_world(root: str, like: Optional[str] = None, images: Optional[int] = None) -> DenseData:
    """The probes' splits of the world at ``root``, generated first if missing (a probe world :func:`probe_world`
    when ``like`` is given)."""
    try:
        return read_dense_data(str(ensure_world(root, **(probe_world(like, images) if like else {}))))
    except OSError as e:  # not generated and cannot be (a non-empty folder, no write access), or incomplete
        raise SystemExit(f'dense_probe: no usable synthetic world at {root}: {e}') from e


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    data = load_world(args.data_root, args.like, args.probe_images)
    try:
        state_dict, kwargs, cfg = encoder_source(args)
        encoder = probe_encoder(state_dict, kwargs, args.image_size)
    except (OSError, ValueError) as e:  # an unreadable checkpoint, or weights that do not fit the encoder
        raise SystemExit(f'dense_probe: {e}') from e
    metrics = run_dense_probes(encoder, data, args.layers, *input_stats(cfg))
    seconds = time.perf_counter() - start
    result = {**metrics, 'checkpoint': args.checkpoint, 'seed': args.seed, 'seconds': round(seconds, 2)}
    out = osp.join(args.work_dir, 'metrics.json')
    atomic_write(out, json.dumps(result, indent=2).encode())
    print(f'dense probe of {args.checkpoint}: {summary(metrics, seconds)} -> {out}')
    return result


if __name__ == '__main__':
    main()
