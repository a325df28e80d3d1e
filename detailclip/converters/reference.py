"""Import of the SLIP and DetailCLIP reference checkpoint formats (arXiv 2112.12750, 2409.06809; docs/methods.md 1, 4,
7.2, 7.6, 9.3).

Pure state-dict functions, kept outside the model classes: :func:`is_reference_slip` / :func:`is_reference_detailclip`
recognise a format by its keys, :func:`strip_prefix` removes the DDP ``module.`` prefix, and
:func:`convert_reference_slip` / :func:`convert_reference_detailclip` rename every reference key to
:class:`ImageTextPretrainer`'s names and fail loudly on anything they cannot place. DetailCLIP's format extends SLIP's
(the CLIP substrate: ``visual.*`` timm ViT, OpenAI-named text tower, ``x @ P`` projections, ``logit_scale``), so both
share :data:`CLIP_PREFIXES`, :data:`CLIP_PROJECTIONS` and :func:`rename_keys`.

SLIP's own checkpoints (SLIP, CLIP and SIMCLR models of its repository) are ``{'epoch', 'state_dict' (with the DDP
prefix), 'optimizer', 'scaler', 'best_acc1', 'args'}``; SLIP adds the SimCLR MLP ``image_mlp.{layer1, bn1, layer2, bn2,
layer3}`` (an ``nn.Sequential`` with ReLUs between), which is our :class:`MLPHead`'s indices 0, 1, 3, 4, 6.

What the DetailCLIP conversion changes besides names (the first point holds for SLIP too):

- ``image_projection(_e)`` (D, d) and ``text_projection(_e)`` (W, d) are used as ``x @ P`` by the reference; ours are
  ``nn.Linear`` weights (d, D), so they are transposed.
- ``decoder_pos_embed`` is a fixed 2-D sin-cos table: ours is computed, not stored, so it is checked and dropped.
- A shared iBOT head lists its prototype layer twice (``last_layer`` and ``last_layer2``); ours holds it once, so
  the duplicate is checked and dropped.
- The reference's teacher text tower shares the student's token/positional embeddings and ``ln_final`` (Q-D13). A model
  built with those parts in ``teacher.shared`` shares them too; a teacher holding a full copy gets the student's values.
- The reference does not checkpoint the iBOT centres (Q-D20): the target model's values are kept.
"""
import math
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from detailclip.models.ops import sincos_pos_embed_2d
from detailclip.models.teacher import copy_key

StateDict = Dict[str, torch.Tensor]

Prefixes = Tuple[Tuple[str, str], ...]

# The CLIP substrate of SLIP, A-CLIP and DetailCLIP models: (reference prefix, our prefix); a prefix without a trailing
# dot is a whole key.
CLIP_PREFIXES: Prefixes = (
    ('visual.', 'image_encoder.'), ('transformer.', 'text_encoder.transformer.'),
    ('token_embedding.', 'text_encoder.token_embedding.'), ('ln_final.', 'text_encoder.ln_final.'),
    ('positional_embedding', 'text_encoder.positional_embedding'), ('logit_scale', 'logit_scale'))
# Reference projections used as x @ P -> our nn.Linear weights (transposed).
CLIP_PROJECTIONS = {'image_projection': 'image_projection.weight', 'text_projection': 'text_projection.weight'}
# SLIP's SimCLR MLP layers -> MLPHead (nn.Sequential) indices: Linear 0, BN 1, ReLU 2, Linear 3, BN 4, ReLU 5, Linear 6.
_SLIP_MLP = {'layer1': 0, 'bn1': 1, 'layer2': 3, 'bn2': 4, 'layer3': 6}
_SLIP_SIGNATURE = ('visual.cls_token', 'image_projection', 'text_projection', 'token_embedding.weight')

# Keys that only a DetailCLIP reference checkpoint has together (after the DDP prefix is stripped).
_SIGNATURE = ('visual.cls_token', 'visual_ema.cls_token', 'image_projection', 'decoder_pos_embed',
              'reconstruction_pred.weight', 'ibot_head.mlp.0.weight')
_PROJECTIONS = {**CLIP_PROJECTIONS, 'image_projection_e': 'teacher.copies.image_projection.weight',
                'text_projection_e': 'teacher.copies.text_projection.weight'}
# Text-tower entries the reference's teacher text tower shares with the student (Q-D13).
_SHARED_TEXT = ('token_embedding.weight', 'positional_embedding', 'ln_final.weight', 'ln_final.bias')
_TEACHER_TEXT = 'teacher.copies.text_encoder.'


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = 'module.') -> StateDict:
    """``state_dict`` with ``prefix`` removed from the keys that start with it (a DDP-wrapped model's keys)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def is_reference_detailclip(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` (with or without the ``module.`` prefix) is a DetailCLIP reference model's."""
    keys = strip_prefix(dict.fromkeys(state_dict)).keys()
    return all(k in keys for k in _SIGNATURE)


def is_reference_slip(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` (``module.`` prefix optional) is a CLIP or SLIP model of SLIP's repository (no EMA
    teacher, unlike A-CLIP / DetailCLIP)."""
    keys = strip_prefix(dict.fromkeys(state_dict)).keys()
    return all(k in keys for k in _SLIP_SIGNATURE) and 'visual_ema.cls_token' not in keys


def _teacher_copy(path: str) -> str:
    """State-dict prefix of the teacher's copy of student submodule ``path``."""
    return f'teacher.copies.{copy_key(path)}.'


def _prefix_map(mae: str, ibot: str) -> Prefixes:
    """DetailCLIP's (reference prefix, our prefix) pairs; no reference prefix is a prefix of another one's keys."""
    decoder = f'objectives.{mae}.decoder.'
    return CLIP_PREFIXES + (
        ('visual_ema.', _teacher_copy('image_encoder')), ('transformer_e.', _TEACHER_TEXT + 'transformer.'),
        ('decoder_embed.', decoder + 'decoder_embed.'), ('mask_token', decoder + 'mask_token'),
        ('decoder_blocks.', decoder + 'decoder_blocks.'), ('decoder_norm.', decoder + 'decoder_norm.'),
        ('reconstruction_pred.', f'objectives.{mae}.pixel_head.proj.'),
        ('ibot_head.', f'objectives.{ibot}.head.'), ('ibot_head_e.', _teacher_copy(f'objectives.{ibot}.head')))


def _slip_prefixes(simclr: str) -> Prefixes:
    """SLIP's (reference prefix, our prefix) pairs: the CLIP substrate and the SimCLR MLP of objective ``simclr``."""
    return CLIP_PREFIXES + tuple((f'image_mlp.{layer}.', f'objectives.{simclr}.head.{index}.')
                                 for layer, index in _SLIP_MLP.items())


def _rename(key: str, prefixes: Prefixes, projections: Mapping[str, str]) -> Optional[str]:
    """Our name of reference ``key``, or None when no rule covers it."""
    if key in projections:
        return projections[key]
    for old, new in prefixes:
        if key == old or (old.endswith('.') and key.startswith(old)):
            return new + key[len(old):]
    return None


def rename_keys(state_dict: Mapping[str, torch.Tensor], prefixes: Prefixes,
                projections: Mapping[str, str]) -> Tuple[StateDict, List[str]]:
    """Reference entries under our names (``projections`` transposed from ``x @ P`` to ``nn.Linear`` weights), and
    the reference keys no rule covers."""
    renamed, unmapped = {}, []
    for key, value in state_dict.items():
        new = _rename(key, prefixes, projections)
        if new is None:
            unmapped.append(key)
        else:
            renamed[new] = value.t() if key in projections else value
    return renamed, unmapped


def check_decoder_pos_embed(pos_embed: torch.Tensor, atol: float = 1e-6) -> None:
    """Raise ValueError unless the reference's (1, 1 + N, D) ``decoder_pos_embed`` is our fixed sin-cos table of its
    square grid (CLS row zero), within ``atol``."""
    num_patches, width = pos_embed.shape[-2] - 1, pos_embed.shape[-1]
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f'decoder_pos_embed {tuple(pos_embed.shape)}: the reference uses a square grid')
    ours = sincos_pos_embed_2d((side, side), width)
    error = (pos_embed.reshape(ours.shape).float() - ours).abs().max().item()
    if error > atol:
        raise ValueError(f'decoder_pos_embed differs from the fixed {side}x{side} sin-cos table by {error:.3g} '
                         f'(> {atol}): this checkpoint was not trained with it')


def _drop_shared_last_layer2(state_dict: StateDict, target: Mapping[str, torch.Tensor]) -> StateDict:
    """Remove ``last_layer2.*`` duplicates of ``last_layer.*`` when the target head is shared (has no last_layer2)."""
    out = {}
    for key, value in state_dict.items():
        if '.last_layer2.' in key and key not in target:
            cls_key = key.replace('.last_layer2.', '.last_layer.')
            if cls_key not in state_dict or not torch.equal(state_dict[cls_key], value):
                raise ValueError(f'{key} differs from {cls_key}, but the model shares one prototype layer between CLS '
                                 'and patch tokens: build the iBOT head with shared_patch_head=False')
            continue
        out[key] = value
    return out


def _fill_teacher_text(state_dict: StateDict, target: Mapping[str, torch.Tensor]) -> None:
    """Copy the student's shared text entries into our teacher's full text tower where the target has one."""
    for name in _SHARED_TEXT:
        key = _TEACHER_TEXT + name
        if key in target and key not in state_dict and 'text_encoder.' + name in state_dict:
            state_dict[key] = state_dict['text_encoder.' + name].clone()


def convert_reference_detailclip(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                                 mae: str = 'mae', ibot: str = 'ibot') -> StateDict:
    """A DetailCLIP reference state dict in our model's names, ready for ``load_state_dict(strict=True)``.

    Args:
        state_dict: The reference model's state dict (``checkpoint['state_dict']``), ``module.`` prefix optional.
        target: Our model's state dict: it decides where shared entries go, and supplies the entries the reference
            does not store (the iBOT centres ``objectives.<ibot>.loss.{cls,patch}_center``).
        mae: Name of the MAE objective in the model config (decoder and pixel head).
        ibot: Name of the iBOT objective in the model config (head, the teacher's copy of it, the centres).

    Returns:
        dict: Every key of ``target``, with the reference's values (cast to the target's dtypes).

    Raises:
        ValueError: Not the reference format; reference keys with no place in the model, model keys the checkpoint
            does not fill, or shape mismatches (all listed); a decoder position table or a ``last_layer2`` that is
            not what our model computes or shares.
    """
    state_dict = strip_prefix(state_dict)
    if not is_reference_detailclip(state_dict):
        lacking = [k for k in _SIGNATURE if k not in state_dict]
        raise ValueError(f'not a DetailCLIP reference state dict: it lacks {lacking}')
    check_decoder_pos_embed(state_dict['decoder_pos_embed'])
    state_dict = {k: v for k, v in state_dict.items() if k != 'decoder_pos_embed'}
    renamed, unexpected = rename_keys(state_dict, _prefix_map(mae, ibot), _PROJECTIONS)
    renamed = _drop_shared_last_layer2(renamed, target)
    _fill_teacher_text(renamed, target)
    for key in (f'objectives.{ibot}.loss.cls_center', f'objectives.{ibot}.loss.patch_center'):
        if key in target:
            renamed[key] = target[key].clone()
    return finish_conversion(renamed, target, unexpected, 'DetailCLIP reference checkpoint')


def convert_reference_slip(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                           simclr: str = 'simclr') -> StateDict:
    """A CLIP or SLIP state dict of SLIP's repository in our model's names, ready for ``load_state_dict(strict=True)``.

    Args:
        state_dict: The model's state dict (``checkpoint['state_dict']``), ``module.`` prefix optional.
        target: Our model's state dict (a CLIP config for SLIP's CLIP models, a SLIP config for its SLIP models).
        simclr: Name of the SimCLR objective in the model config (its ``head`` receives ``image_mlp``).

    Returns:
        dict: Every key of ``target``, with the checkpoint's values (cast to the target's dtypes).

    Raises:
        ValueError: Not the format; keys with no place in the model, model keys the checkpoint does not fill, or
            shape mismatches (all listed).
    """
    state_dict = strip_prefix(state_dict)
    if not is_reference_slip(state_dict):
        lacking = [k for k in _SLIP_SIGNATURE if k not in state_dict]
        raise ValueError(f'not a SLIP-repository CLIP/SLIP state dict: it lacks {lacking} or has an EMA teacher '
                         '(visual_ema.*: use convert_reference_detailclip)')
    renamed, unexpected = rename_keys(state_dict, _slip_prefixes(simclr), CLIP_PROJECTIONS)
    return finish_conversion(renamed, target, unexpected, 'SLIP checkpoint')


def finish_conversion(converted: StateDict, target: Mapping[str, torch.Tensor], unmapped: List[str],
                      source: str) -> StateDict:
    """``converted`` checked against ``target`` (see :func:`check_keys`) and cast to its dtypes, in its key order."""
    check_keys(converted, target, unmapped, source)
    return {k: converted[k].to(target[k].dtype).contiguous() for k in target}


def check_keys(converted: StateDict, target: Mapping[str, torch.Tensor], unmapped: List[str], source: str) -> None:
    """Raise one ValueError listing every unmapped, unexpected, missing and wrongly shaped key of ``converted``
    (from ``source``, e.g. ``'SLIP checkpoint'``) against ``target``."""
    unexpected = unmapped + sorted(k for k in converted if k not in target)
    missing = sorted(k for k in target if k not in converted)
    shapes = [f'{k}: checkpoint {tuple(converted[k].shape)} vs model {tuple(target[k].shape)}'
              for k in converted if k in target and converted[k].shape != target[k].shape]
    problems = [f'{name}: {items}' for name, items in
                (('unexpected keys', unexpected), ('missing keys', missing), ('shape mismatches', shapes)) if items]
    if problems:
        raise ValueError(f'the {source} does not match the model (check the config and the objective names): '
                         + '; '.join(problems))
