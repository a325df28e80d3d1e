"""Import of OpenAI CLIP ViT weights (Radford et al., arXiv 2103.00020) into :class:`ImageTextPretrainer`.

Pure state-dict functions (style.md 14). The source is either OpenAI's TorchScript archive (``ViT-B-16.pt``, read by
:func:`~detailclip.converters.model_import.load_checkpoint_file`) or a plain state dict as open_clip saves it; both use
OpenAI's names:

=======================================================  ===================================================
OpenAI                                                   ours
=======================================================  ===================================================
``visual.conv1.weight`` (D, 3, p, p), no bias             ``image_encoder.patch_embed.proj.weight`` (``pre_norm``
                                                         ViTs have no patch bias in timm)
``visual.class_embedding`` (D,)                          ``image_encoder.cls_token`` (1, 1, D)
``visual.positional_embedding`` (1 + N, D)               ``image_encoder.pos_embed`` (1, 1 + N, D)
``visual.ln_pre`` / ``visual.ln_post``                   ``image_encoder.norm_pre`` / ``image_encoder.norm``
``visual.transformer.resblocks.i.{ln_1, ln_2}``           ``image_encoder.blocks.i.{norm1, norm2}``
``...attn.in_proj_{weight, bias}`` / ``attn.out_proj``    ``...attn.qkv.{weight, bias}`` / ``attn.proj``
``...mlp.c_fc`` / ``mlp.c_proj``                          ``...mlp.fc1`` / ``mlp.fc2``
``visual.proj`` (D, d), used as ``x @ P``                 ``image_projection.weight`` (d, D)
``transformer.*``, ``token_embedding``, ``positional_     ``text_encoder.<same>`` (our text tower keeps OpenAI's
embedding``, ``ln_final``                                names)
``text_projection`` (W, d)                               ``text_projection.weight`` (d, W)
``logit_scale``                                          ``logit_scale``
=======================================================  ===================================================

OpenAI's TorchScript archive also stores ``input_resolution``, ``context_length`` and ``vocab_size`` as tensors (checked
against the model and dropped); a traced open_clip model also stores its causal ``attn_mask`` (dropped). The model must
be built with OpenAI's ViT options (``pre_norm=True``, ``act_layer='quick_gelu'``, ``norm_eps=1e-5``:
``configs/clip/clip_vit-base-p16_openai.py``).
"""
import re
from typing import Mapping, Optional

import torch

from .reference import CLIP_PREFIXES, StateDict, finish_conversion, rename_keys, strip_prefix

_SIGNATURE = ('visual.conv1.weight', 'visual.class_embedding', 'visual.proj', 'text_projection')
_VISUAL = {'visual.conv1.weight': 'image_encoder.patch_embed.proj.weight', 'visual.class_embedding':
           'image_encoder.cls_token', 'visual.positional_embedding': 'image_encoder.pos_embed',
           'visual.ln_pre.weight': 'image_encoder.norm_pre.weight', 'visual.ln_pre.bias': 'image_encoder.norm_pre.bias',
           'visual.ln_post.weight': 'image_encoder.norm.weight', 'visual.ln_post.bias': 'image_encoder.norm.bias',
           'visual.proj': 'image_projection.weight'}
_VISUAL_BLOCK = re.compile(r'visual\.transformer\.resblocks\.(\d+)\.(.+)')
_BLOCK_PARTS = (('ln_1.', 'norm1.'), ('ln_2.', 'norm2.'), ('attn.in_proj_weight', 'attn.qkv.weight'),
                ('attn.in_proj_bias', 'attn.qkv.bias'), ('attn.out_proj.', 'attn.proj.'), ('mlp.c_fc.', 'mlp.fc1.'),
                ('mlp.c_proj.', 'mlp.fc2.'))
# The text tower and logit scale: the CLIP substrate's rules (our text tower keeps OpenAI's names).
_TEXT_PREFIXES = tuple(rule for rule in CLIP_PREFIXES if rule[0] != 'visual.')
_TEXT_PROJECTION = {'text_projection': 'text_projection.weight'}
# Non-weights of TorchScript archives: OpenAI's scalars, and open_clip's causal text mask (ours is implicit).
_ARCHIVE_EXTRAS = ('input_resolution', 'context_length', 'vocab_size', 'attn_mask')


def is_openai_clip(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` (``module.`` prefix optional) is an OpenAI-format CLIP ViT's."""
    keys = strip_prefix(dict.fromkeys(state_dict)).keys()
    return all(k in keys for k in _SIGNATURE)


def _visual_name(key: str) -> Optional[str]:
    """Our name of OpenAI ``visual.*`` entry ``key`` (None if no rule covers it)."""
    if key in _VISUAL:
        return _VISUAL[key]
    match = _VISUAL_BLOCK.fullmatch(key)
    if match is None:
        return None
    index, rest = match.groups()
    for old, new in _BLOCK_PARTS:
        if rest == old or (old.endswith('.') and rest.startswith(old)):
            return f'image_encoder.blocks.{index}.{new}{rest[len(old):]}'
    return None


def _visual_value(key: str, value: torch.Tensor) -> torch.Tensor:
    """OpenAI's layout -> ours: CLS (D,) -> (1, 1, D), positions (T, D) -> (1, T, D), ``x @ P`` -> Linear weight."""
    if key == 'visual.class_embedding':
        return value.reshape(1, 1, -1)
    if key == 'visual.positional_embedding':
        return value.unsqueeze(0)
    return value.t() if key == 'visual.proj' else value


def _check_archive_scalars(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> None:
    """Compare the archive's context length and vocabulary size with the model's text tower (the input resolution
    is checked through ``pos_embed``'s shape)."""
    sizes = dict(context_length=target['text_encoder.positional_embedding'].shape[0],
                 vocab_size=target['text_encoder.token_embedding.weight'].shape[0])
    for key, expected in sizes.items():
        if key in state_dict and int(state_dict[key]) != expected:
            raise ValueError(f'the OpenAI CLIP archive has {key}={int(state_dict[key])}, the model {expected}: set '
                             f'model.text_encoder.{key} in the config')


def convert_openai_clip(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> StateDict:
    """An OpenAI-format CLIP ViT state dict in our model's names, ready for ``load_state_dict(strict=True)``.

    Args:
        state_dict: OpenAI's (TorchScript ``state_dict()``) or open_clip's state dict, ``module.`` prefix optional.
        target: Our model's state dict (a CLIP config with OpenAI's ViT options and the checkpoint's dimensions).

    Returns:
        dict: Every key of ``target``, with the checkpoint's values cast to the target's dtypes (OpenAI's are fp16).

    Raises:
        ValueError: Not the format (e.g. a ResNet CLIP); keys with no place in the model, model keys the checkpoint
            does not fill, or shape mismatches (all listed).
    """
    state_dict = strip_prefix(state_dict)
    if not is_openai_clip(state_dict):
        lacking = [k for k in _SIGNATURE if k not in state_dict]
        raise ValueError(f'not an OpenAI CLIP ViT state dict: it lacks {lacking}')
    _check_archive_scalars(state_dict, target)
    text = {k: v for k, v in state_dict.items() if not k.startswith('visual.') and k not in _ARCHIVE_EXTRAS}
    converted, unmapped = rename_keys(text, _TEXT_PREFIXES, _TEXT_PROJECTION)
    for key, value in state_dict.items():
        if key.startswith('visual.'):
            name = _visual_name(key)
            if name is None:
                unmapped.append(key)
            else:
                converted[name] = _visual_value(key, value)
    return finish_conversion(converted, target, unmapped, 'OpenAI CLIP checkpoint')
