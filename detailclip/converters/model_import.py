"""What every checkpoint importer (``tools/model_converters/import_*.py``) shares: reading the foreign file safely,
building our model from a config, and writing the converted weights as a checkpoint ``load_from`` and
``tools/test.py`` read with ``torch.load(weights_only=True)``."""
import argparse
import os.path as osp
import zipfile
from typing import Callable, Dict, Mapping, Optional

import torch
from mmengine.config import Config, DictAction
from torch import nn

from detailclip.registry import MODELS
from .torchscript import read_torchscript_state_dict

_PLAIN = (bool, int, float, str, type(None))


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``; OpenAI distributes its CLIP weights so): a zip
    holding compiled ``code/`` and ``constants.pkl``, which a plain ``torch.save`` file does not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith('/constants.pkl') for name in archive.namelist())


def load_checkpoint_file(path: str) -> dict:
    """A checkpoint unpickled weights-only; the one extra global allowed is the ``argparse.Namespace`` the SLIP-family
    reference code stores under ``args``. A TorchScript archive gives its module's state dict, read without running
    the archive's code (:func:`~detailclip.converters.torchscript.read_torchscript_state_dict`)."""
    if is_torchscript_archive(path):
        return read_torchscript_state_dict(path)
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location='cpu', weights_only=True)


def model_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The model weights of a loaded checkpoint: its ``state_dict`` entry, or the checkpoint itself when flat."""
    return checkpoint['state_dict'] if 'state_dict' in checkpoint else dict(checkpoint)


def build_model(config: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """Our pretrainer, built from ``config`` (with ``cfg_options`` merged)."""
    import detailclip.models  # noqa: F401  (registers the model classes)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return MODELS.build(cfg.model)


def import_meta(checkpoint: Mapping, source: str, source_format: str, config: str) -> dict:
    """Provenance with plain values only, so the output stays weights-only loadable."""
    args = checkpoint.get('args')
    epoch = checkpoint.get('epoch')
    return dict(source=osp.basename(source), source_format=source_format, config=config,
                epoch=epoch if isinstance(epoch, int) else None,
                reference_args={k: v for k, v in vars(args).items() if isinstance(v, _PLAIN)} if args else {})


Converter = Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]], Dict[str, torch.Tensor]]


def import_checkpoint(path: str, out: str, config: str, convert: Converter, source_format: str,
                      cfg_options: Optional[dict] = None) -> nn.Module:
    """Read ``path``, convert its weights with ``convert(state_dict, target)`` into the model of ``config``, load them
    strictly and save ``{'state_dict', 'meta'}`` to ``out``; returns the loaded model."""
    checkpoint = load_checkpoint_file(path)
    state_dict = model_state_dict(checkpoint)
    model = build_model(config, cfg_options)
    converted = convert(state_dict, model.state_dict())
    model.load_state_dict(converted, strict=True)
    meta = import_meta(checkpoint, path, source_format, config)
    torch.save(dict(state_dict=model.state_dict(), meta=meta), out)
    print(f'converted {len(state_dict)} {source_format} entries into {len(converted)} model entries: {out}')
    return model


def import_parser(description: str, checkpoint_help: str, config_help: str,
                  default_config: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line of every importer, ``CKPT OUT --config CONFIG [--cfg-options k=v ...]`` (``--config`` required
    unless ``default_config`` is given); an importer adds its own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('checkpoint', help=checkpoint_help)
    parser.add_argument('out', help='where the converted checkpoint is written')
    parser.add_argument('--config', required=default_config is None, default=default_config, help=config_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return parser


def import_from_args(args: argparse.Namespace, convert: Converter, source_format: str) -> str:
    """:func:`import_checkpoint` with the arguments of an :func:`import_parser`; returns the output path."""
    import_checkpoint(args.checkpoint, args.out, args.config, convert, source_format, args.cfg_options)
    return args.out
