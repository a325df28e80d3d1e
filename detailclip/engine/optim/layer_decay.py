"""Layer-wise learning-rate decay for ViT fine-tuning (BEiT arXiv 2106.08254; iBOT's recipe, docs/methods.md 9.4).

Name based, so one constructor serves pretraining configs and mmseg/mmdet models alike: parameters under the
encoder prefix get a layer id from their name (embeddings 0, ``blocks.i`` i + 1), everything else (the encoder's
final norm, adapters, necks, heads) the last id ``num_layers - 1``; the learning rate is scaled by
``layer_decay_rate ** (num_layers - 1 - id)``.
"""
import re
from typing import Dict, List, Optional

from torch import nn

from detailclip.registry import OPTIM_WRAPPER_CONSTRUCTORS
from .param_groups import CLIPOptimWrapperConstructor, is_no_decay

_EMBEDDINGS = re.compile(r'(^|\.)(cls_token|mask_token|pos_embed|patch_embed)(\.|$)')
_BLOCK = re.compile(r'(^|\.)blocks\.(\d+)\.')


def layer_id(name: str, num_layers: int, encoder_prefix: str) -> int:
    """Layer id of parameter ``name``: 0 for the embeddings, i + 1 for ``blocks.i`` of the encoder (names starting
    with ``encoder_prefix``), ``num_layers - 1`` for everything else."""
    if name.startswith(encoder_prefix):
        if _EMBEDDINGS.search(name):
            return 0
        block = _BLOCK.search(name)
        if block:
            return int(block.group(2)) + 1
    return num_layers - 1


def count_blocks(model: nn.Module, encoder_prefix: str) -> int:
    """Number of ``blocks.i`` under ``encoder_prefix`` (raises if there are none)."""
    ids = {int(m.group(2)) for n, _ in model.named_parameters()
           if n.startswith(encoder_prefix) and (m := _BLOCK.search(n))}
    if not ids:
        raise ValueError(f'no parameter named "{encoder_prefix}...blocks.<i>." in the model: set paramwise_cfg.'
                         'encoder_prefix to the ViT\'s attribute path (e.g. "backbone." or "image_encoder.")')
    return max(ids) + 1


def layer_decay_groups(model: nn.Module, lr: float, weight_decay: float, layer_decay_rate: float,
                       num_layers: Optional[int] = None, encoder_prefix: str = 'backbone.',
                       wd_rule: str = 'clean') -> List[Dict]:
    """One parameter group per (layer id, decay or not) over the trainable parameters.

    Args:
        model: The model (unwrapped).
        lr: Base learning rate (of the last layer id).
        weight_decay: Weight decay of the decayed groups.
        layer_decay_rate: Ratio of the lr of one layer to the next one's.
        num_layers: Encoder depth + 2; counted from the model's blocks when None.
        encoder_prefix: Attribute path of the ViT whose names give the layer ids.
        wd_rule: ``'clean'`` (no decay for 1-D parameters, biases, norms, pos_embed, cls_token, mask_token) or
            ``'reference'`` (1-D and biases only: iBOT's exemption of pos_embed/cls_token never matched, Q-I1).

    Returns:
        Groups with ``params``, ``lr``, ``weight_decay``, plus ``lr_scale`` and ``layer_id`` for inspection.
    """
    num_layers = num_layers or count_blocks(model, encoder_prefix) + 2
    groups: Dict[tuple, Dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lid = layer_id(name, num_layers, encoder_prefix)
        no_decay = is_no_decay(name, param, wd_rule)
        key = (lid, no_decay)
        if key not in groups:
            scale = layer_decay_rate ** (num_layers - 1 - lid)
            groups[key] = dict(params=[], lr=lr * scale, lr_scale=scale, layer_id=lid,
                               weight_decay=0. if no_decay else weight_decay)
        groups[key]['params'].append(param)
    return [groups[k] for k in sorted(groups)]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(CLIPOptimWrapperConstructor):
    """Builds the optimizer over :func:`layer_decay_groups` and wraps it.

    Config::

        optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=8e-5, weight_decay=0.05),
                             constructor='detailclip.LayerDecayOptimWrapperConstructor',
                             paramwise_cfg=dict(layer_decay_rate=0.65, num_layers=14))

    Args:
        optim_wrapper_cfg (dict): Wrapper config with its ``optimizer``.
        paramwise_cfg (dict): ``layer_decay_rate`` (required), ``num_layers`` (default: blocks + 2),
            ``encoder_prefix`` (default ``'backbone.'``), ``wd_rule`` (default ``'clean'``).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        if 'layer_decay_rate' not in paramwise_cfg:
            raise ValueError('LayerDecayOptimWrapperConstructor needs paramwise_cfg.layer_decay_rate (e.g. 0.65)')
        super().__init__(optim_wrapper_cfg, dict(wd_rule=paramwise_cfg.pop('wd_rule', 'clean')))
        self.layer_decay_rate = paramwise_cfg.pop('layer_decay_rate')
        self.num_layers = paramwise_cfg.pop('num_layers', None)
        self.encoder_prefix = paramwise_cfg.pop('encoder_prefix', 'backbone.')
        if paramwise_cfg:
            raise ValueError(f'unknown paramwise_cfg keys {sorted(paramwise_cfg)}: use layer_decay_rate, num_layers, '
                             'encoder_prefix, wd_rule')

    def groups(self, model: nn.Module) -> List[dict]:
        """Parameter groups with the layer-wise lr scales (:func:`layer_decay_groups`)."""
        return layer_decay_groups(model, self.optimizer_cfg['lr'], self.optimizer_cfg.get('weight_decay', 0.),
                                  self.layer_decay_rate, self.num_layers, self.encoder_prefix, self.wd_rule)
