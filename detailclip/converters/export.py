"""Backbone export for downstream tasks (docs/methods.md 9.3): the image encoder of a training checkpoint as timm-named
ViT weights, with provenance.

Pure state-dict functions (style.md 14): pick the student's or the teacher's encoder, strip the DDP prefix, resize
``pos_embed``, fail loudly on missing or unexpected keys. The export is ``{"state_dict": {timm key: tensor}, "meta":
{method, objectives, network, iter, epoch, encoder}}`` written as ``OUT.pth`` and as ``OUT.safetensors`` (the meta
entries JSON-encoded in the safetensors header). ``meta["encoder"]`` holds the keyword arguments that rebuild the
encoder (:func:`build_encoder`), so a downstream backbone can be configured from the export alone.
"""
import io
import json
import os.path as osp
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from timm.layers import resample_abs_pos_embed, to_2tuple

from detailclip.models.encoders.vit import VisionTransformer
from detailclip.models.pretrainer import NETWORKS
from detailclip.models.teacher import copy_key
from detailclip.utils.checkpoint import atomic_write
from .reference import strip_prefix

StateDict = Dict[str, torch.Tensor]
Size2 = Union[int, Sequence[int]]

# Encoder parameters used only by a pretraining objective (iBOT/BEiT mask token); not part of a backbone.
PRETRAIN_ONLY_KEYS = ('mask_token',)
# Encoder options that only matter while pretraining; a rebuilt backbone sets its own (e.g. drop_path_rate) or loads
# the weights over them (cls_token_init_std).
PRETRAIN_ONLY_OPTIONS = ('type', 'freeze_patch_embed', 'use_mask_token', 'drop_path_rate', 'cls_token_init_std')


def encoder_prefix(network: str) -> str:
    """State-dict prefix of the pretrainer's image encoder: the student's or the teacher's copy (``--teacher``)."""
    if network not in NETWORKS:
        raise ValueError(f'unknown network {network!r}: use one of {NETWORKS}')
    return 'image_encoder.' if network == 'student' else f'teacher.copies.{copy_key("image_encoder")}.'


def extract_encoder(state_dict: Mapping[str, torch.Tensor], network: str = 'student') -> StateDict:
    """The image encoder's entries of a pretrainer state dict (DDP ``module.`` prefix or not), timm-named.

    Args:
        state_dict: Pretrainer state dict.
        network: ``'student'`` or ``'teacher'``.

    Returns:
        ``{timm key: tensor}`` without pretraining-only entries (``mask_token``).
    """
    prefix = encoder_prefix(network)
    plain = strip_prefix(state_dict)
    encoder = {k[len(prefix):]: v for k, v in plain.items() if k.startswith(prefix)}
    if not encoder:
        hint = ' (this model has no EMA teacher: export the student, without --teacher)' * (network == 'teacher')
        raise ValueError(f'no {network} image-encoder entries (keys starting with {prefix!r}) in the checkpoint{hint}')
    return {k: v for k, v in encoder.items() if k not in PRETRAIN_ONLY_KEYS}


def check_keys(state_dict: Mapping[str, torch.Tensor], expected: Iterable[str], what: str) -> None:
    """Raise ``ValueError`` naming every missing and unexpected key of ``state_dict`` against ``expected``."""
    expected = set(expected)
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise ValueError(f'{what}: {len(missing)} missing keys ({", ".join(missing) or "none"}) and '
                         f'{len(unexpected)} unexpected keys ({", ".join(unexpected) or "none"}); the weights do not '
                         'belong to this encoder: build it with the export\'s meta["encoder"] arguments (same patch '
                         'size, stem, width and depth)')


def grid_of(img_size: Size2, patch_size: Size2) -> Tuple[int, int]:
    """Patch grid ``(H / p, W / p)`` of an image size."""
    (h, w), (ph, pw) = to_2tuple(img_size), to_2tuple(patch_size)
    return h // ph, w // pw


def resize_pos_embed(state_dict: Mapping[str, torch.Tensor], new_grid: Tuple[int, int],
                     old_grid: Optional[Tuple[int, int]] = None) -> StateDict:
    """``state_dict`` with ``pos_embed`` ``(1, 1 + N, D)`` bicubically resampled to ``new_grid`` (the CLS entry kept).

    Args:
        state_dict: Encoder state dict (timm names).
        new_grid: Target patch grid ``(gh, gw)``.
        old_grid: The stored grid; a square one is assumed when None.

    Returns:
        A new dict (the input is not modified); unchanged entries are shared.
    """
    pos = state_dict['pos_embed']
    num_patches = pos.shape[1] - 1
    if old_grid is None:
        side = int(round(num_patches ** 0.5))
        if side * side != num_patches:
            raise ValueError(f'pos_embed holds {num_patches} patch positions, not a square grid: pass its grid')
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != num_patches:
        raise ValueError(f'pos_embed holds {num_patches} patch positions, not the {tuple(old_grid)} grid')
    if tuple(new_grid) == tuple(old_grid):
        return dict(state_dict)
    resized = resample_abs_pos_embed(pos, new_size=list(new_grid), old_size=list(old_grid), num_prefix_tokens=1)
    return {**state_dict, 'pos_embed': resized}


def encoder_kwargs(image_encoder_cfg: Mapping) -> dict:
    """Keyword arguments that rebuild a pretrainer's image encoder for downstream use (JSON-serialisable)."""
    kwargs = {k: v for k, v in dict(image_encoder_cfg).items() if k not in PRETRAIN_ONLY_OPTIONS}
    return json.loads(json.dumps(kwargs))


def build_encoder(kwargs: Mapping, **overrides) -> VisionTransformer:
    """The encoder described by ``meta["encoder"]`` (with ``overrides``, e.g. ``img_size``)."""
    return VisionTransformer(**{**kwargs, **overrides})


def load_strict(encoder: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state_dict`` into ``encoder`` after checks that name every missing, unexpected or misshapen entry."""
    own = encoder.state_dict()
    check_keys(state_dict, own.keys(), what)
    wrong = [f'{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}'
             for k, v in state_dict.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f'{what}: shapes differ from the encoder\'s ({", ".join(wrong)}); build it with the '
                         'export\'s meta["encoder"] arguments')
    encoder.load_state_dict(state_dict, strict=True)


def training_meta(checkpoint: Mapping, config: Optional[Config] = None) -> Tuple[Config, dict]:
    """The training config and the provenance of an MMEngine checkpoint.

    Args:
        checkpoint: The loaded checkpoint (``{"state_dict", "meta": {cfg, iter, epoch, experiment_name}}``; an
            imported reference checkpoint names its config file in ``meta["config"]``).
        config: The training config, when the checkpoint does not carry it.

    Returns:
        The config and ``dict(method, objectives, iter, epoch)``; ``method`` is the config name's first field
        (``detailclip_vit-...`` -> ``detailclip``), falling back to the objective names.
    """
    meta = checkpoint.get('meta') or {}
    if config is None and isinstance(meta.get('cfg'), str):
        config = Config.fromstring(meta['cfg'], file_format='.py')
    elif config is None and osp.isfile(str(meta.get('config'))):  # tools/model_converters/import_*.py outputs
        config = Config.fromfile(meta['config'])
    elif config is None:
        raise ValueError('the checkpoint carries no training config (meta["cfg"] or meta["config"]): pass the '
                         'config it was trained with (--config CONFIG)')
    objectives = list(config.model.get('objectives', {}))
    name = meta.get('experiment_name') or (osp.basename(config.filename) if config.filename else '')
    method = name.split('_')[0] if '_' in name else '+'.join(objectives)
    return config, dict(method=method, objectives=objectives, iter=meta.get('iter'), epoch=meta.get('epoch'))


def export_backbone(checkpoint: Mapping, network: str = 'student', img_size: Optional[Size2] = None,
                    config: Optional[Config] = None) -> Tuple[StateDict, dict]:
    """The image encoder of a training checkpoint as a checked, timm-named backbone.

    Args:
        checkpoint: Loaded MMEngine checkpoint (its ``state_dict`` may carry the DDP prefix).
        network: ``'student'`` or ``'teacher'``.
        img_size: Resize ``pos_embed`` to this input size (int or ``(H, W)``); the trained size when None.
        config: Training config when the checkpoint does not carry it.

    Returns:
        ``(state_dict, meta)`` with ``meta = dict(method, objectives, network, iter, epoch, encoder)``.
    """
    config, meta = training_meta(checkpoint, config)
    state_dict = extract_encoder(checkpoint.get('state_dict', checkpoint), network)
    kwargs = encoder_kwargs(config.model.image_encoder)
    if img_size is not None:
        patch = kwargs.get('patch_size', 16)
        state_dict = resize_pos_embed(state_dict, grid_of(img_size, patch), grid_of(kwargs.get('img_size', 224), patch))
        kwargs['img_size'] = list(to_2tuple(img_size)) if not isinstance(img_size, int) else img_size
    load_strict(build_encoder(kwargs), state_dict, f'{network} image encoder')
    return {k: v.contiguous() for k, v in state_dict.items()}, dict(meta, network=network, encoder=kwargs)


def save_backbone(state_dict: Mapping[str, torch.Tensor], meta: Mapping, out: str) -> Tuple[str, str]:
    """Write ``out.pth`` (``{"state_dict", "meta"}``) and ``out.safetensors`` (meta entries as JSON strings), each
    atomically (:func:`~detailclip.utils.checkpoint.atomic_write`), so readers never see a partial file and several
    ranks may write the same export at once.

    Returns:
        The two paths.
    """
    from safetensors.torch import save
    stem = out[:-len(ext)] if (ext := osp.splitext(out)[1]) in ('.pth', '.safetensors') else out
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    buffer = io.BytesIO()
    torch.save(dict(state_dict=tensors, meta=dict(meta)), buffer)
    atomic_write(f'{stem}.pth', buffer.getvalue())
    header = {k: json.dumps(v) for k, v in meta.items()}
    atomic_write(f'{stem}.safetensors', save(tensors, metadata={'format': 'pt', **header}))
    return f'{stem}.pth', f'{stem}.safetensors'


def load_backbone(path: str) -> Tuple[StateDict, dict]:
    """Read an exported backbone (``.pth`` or ``.safetensors``).

    A ``.pth`` may also be a flat state dict or ``{"model": ...}`` (the DetailCLIP/iBOT exporters' formats); the
    DDP prefix is stripped. Returns ``(state_dict, meta)``; ``meta`` is empty when the file has none.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'backbone weights {path!r} not found: export them with '
                                'tools/model_converters/export_backbone.py CKPT OUT')
    if path.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        with safe_open(path, framework='pt') as f:
            header = f.metadata() or {}
        meta = {k: json.loads(v) for k, v in header.items() if k != 'format'}
        return load_file(path), meta
    loaded = torch.load(path, map_location='cpu', weights_only=True)
    state_dict = loaded.get('state_dict', loaded.get('model', loaded))
    return strip_prefix(state_dict), dict(loaded.get('meta') or {})
