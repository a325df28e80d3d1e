"""Convert a checkpoint of the public DetailCLIP reference code (arXiv 2409.06809) into this platform's format.

    python tools/model_converters/import_detailclip_reference.py CKPT OUT --config CONFIG [--cfg-options k=v ...]
                                                                  [--mae NAME] [--ibot NAME]

CKPT is the reference's training checkpoint ({epoch, state_dict with the DDP "module." prefix, optimizer, scaler,
best_acc, args}, methods.md 7.6) or a bare reference state dict. The model is built from CONFIG (a DetailCLIP config
of the same dimensions), loaded strictly with the converted weights, and saved as {'state_dict', 'meta'}, which
``load_from`` and ``tools/test.py`` read with ``torch.load(weights_only=True)``.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from torch import nn

from detailclip.registry import MODELS
from detailclip.utils.reference import convert_reference_detailclip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Import a DetailCLIP reference checkpoint')
    parser.add_argument('checkpoint', help='reference checkpoint (e.g. the released checkpoint.pt)')
    parser.add_argument('out', help='where the converted checkpoint is written')
    parser.add_argument('--config', required=True, help='DetailCLIP model config with the checkpoint\'s dimensions')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    parser.add_argument('--mae', default='mae', help='name of the MAE objective in the config')
    parser.add_argument('--ibot', default='ibot', help='name of the iBOT objective in the config')
    return parser.parse_args(argv)


def load_reference_checkpoint(path: str) -> dict:
    """The reference checkpoint, unpickled weights-only; the one extra global allowed is the ``argparse.Namespace``
    the reference stores under ``args``."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location='cpu', weights_only=True)


def build_model(config: str, cfg_options: dict = None) -> nn.Module:
    """Our pretrainer, built from ``config`` (with ``cfg_options`` merged)."""
    import detailclip.models  # noqa: F401  (registers the model classes)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return MODELS.build(cfg.model)


def _meta(checkpoint: dict, source: str, config: str) -> dict:
    """Provenance with plain values only, so the output stays weights-only loadable."""
    args = checkpoint.get('args')
    plain = (bool, int, float, str, type(None))
    return dict(source=osp.basename(source), source_format='detailclip-reference', config=config,
                epoch=checkpoint.get('epoch') if isinstance(checkpoint.get('epoch'), int) else None,
                reference_args={k: v for k, v in vars(args).items() if isinstance(v, plain)} if args else {})


def main(argv=None) -> str:
    args = parse_args(argv)
    checkpoint = load_reference_checkpoint(args.checkpoint)
    state_dict = checkpoint['state_dict'] if 'state_dict' in checkpoint else checkpoint
    model = build_model(args.config, args.cfg_options)
    converted = convert_reference_detailclip(state_dict, model.state_dict(), mae=args.mae, ibot=args.ibot)
    model.load_state_dict(converted, strict=True)
    torch.save(dict(state_dict=model.state_dict(), meta=_meta(checkpoint, args.checkpoint, args.config)), args.out)
    print(f'converted {len(state_dict)} reference entries into {len(converted)} model entries: {args.out}')
    return args.out


if __name__ == '__main__':
    main()
