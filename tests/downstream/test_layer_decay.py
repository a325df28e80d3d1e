"""Layer-wise lr decay (docs/methods.md 9.4): lr scale and weight decay of every named parameter of a tiny model."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

from detailclip.engine.optim import LayerDecayOptimWrapperConstructor, layer_decay_groups, layer_id
from detailclip.models.encoders.vit import VisionTransformer

RATE = 0.5


class TinySegmentor(nn.Module):
    """A ViT backbone (2 blocks, mask token) and a head with a conv and a BN, named like an mmseg model."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.encoder = VisionTransformer(img_size=32, patch_size=16, embed_dim=8, depth=2, num_heads=2,
                                                  use_mask_token=True)
        self.decode_head = nn.Sequential(nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4))


def expected(name: str, param: torch.Tensor) -> tuple:
    """(lr scale, weight decay) of one parameter written out by hand: num_layers = 2 + 2 = 4, ids 0 / 1-2 / 3."""
    short = name.replace('backbone.encoder.', '')
    if short.startswith(('cls_token', 'pos_embed', 'patch_embed', 'mask_token')):
        lid = 0
    elif short.startswith('blocks.'):
        lid = int(short.split('.')[1]) + 1
    else:
        lid = 3
    no_decay = param.ndim == 1 or name.endswith('.bias') or short in ('pos_embed', 'cls_token', 'mask_token')
    return RATE ** (3 - lid), 0. if no_decay else 0.05


def _by_param(groups):
    return {id(p): (g['lr_scale'], g['weight_decay'], g['lr']) for g in groups for p in g['params']}


def test_every_parameter_gets_its_scale_and_decay():
    model = TinySegmentor()
    groups = _by_param(layer_decay_groups(model, lr=1e-3, weight_decay=0.05, layer_decay_rate=RATE))
    names = dict(model.named_parameters())
    assert len(groups) == len(names)
    for name, param in names.items():
        scale, wd = expected(name, param)
        assert groups[id(param)][:2] == pytest.approx((scale, wd)), name
        assert groups[id(param)][2] == pytest.approx(1e-3 * scale), name
    # spot checks of the rule itself
    assert groups[id(names['backbone.encoder.patch_embed.proj.weight'])][:2] == pytest.approx((RATE ** 3, 0.05))
    assert groups[id(names['backbone.encoder.pos_embed'])][:2] == pytest.approx((RATE ** 3, 0.))
    assert groups[id(names['backbone.encoder.blocks.1.attn.qkv.weight'])][:2] == pytest.approx((RATE, 0.05))
    assert groups[id(names['backbone.encoder.norm.weight'])][:2] == pytest.approx((1., 0.))
    assert groups[id(names['decode_head.0.weight'])][:2] == pytest.approx((1., 0.05))


def test_reference_rule_decays_pos_embed_and_cls_token():
    """iBOT's exemption compared unprefixed names and never matched (Q-I1): the reference rule keeps that."""
    model = TinySegmentor()
    groups = _by_param(layer_decay_groups(model, 1e-3, 0.05, RATE, wd_rule='reference'))
    assert groups[id(model.backbone.encoder.pos_embed)][1] == 0.05
    assert groups[id(model.backbone.encoder.cls_token)][1] == 0.05
    assert groups[id(model.backbone.encoder.blocks[0].attn.qkv.bias)][1] == 0.


def test_names_outside_the_encoder_are_last():
    assert layer_id('decode_head.blocks.0.conv.weight', 14, 'backbone.') == 13
    assert layer_id('image_encoder.blocks.11.mlp.fc1.weight', 14, 'image_encoder.') == 12
    assert layer_id('image_encoder.patch_embed.proj.0.weight', 14, 'image_encoder.') == 0


def test_frozen_parameters_are_left_out_and_num_layers_is_counted():
    model = TinySegmentor()
    model.backbone.encoder.blocks[0].requires_grad_(False)
    groups = layer_decay_groups(model, 1e-3, 0.05, RATE)
    params = {id(p) for g in groups for p in g['params']}
    assert not any(id(p) in params for p in model.backbone.encoder.blocks[0].parameters())
    assert max(g['layer_id'] for g in groups) == 3  # depth 2 + 2 layers, ids 0..3


def test_constructor_through_the_registry():
    model = TinySegmentor()
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='detailclip.LayerDecayOptimWrapperConstructor', paramwise_cfg=dict(layer_decay_rate=RATE)))
    by_param = {id(p): (g['lr'], g['weight_decay']) for g in wrapper.optimizer.param_groups for p in g['params']}
    for name, param in model.named_parameters():
        scale, wd = expected(name, param)
        assert by_param[id(param)] == pytest.approx((1e-3 * scale, wd)), name


def test_constructor_rejects_bad_paramwise_cfg():
    with pytest.raises(ValueError, match='layer_decay_rate'):
        LayerDecayOptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1e-3)), dict(num_layers=4))
    with pytest.raises(ValueError, match=r"unknown paramwise_cfg keys \['decay_mult'\]"):
        LayerDecayOptimWrapperConstructor(dict(optimizer=dict(type='AdamW', lr=1e-3)),
                                          dict(layer_decay_rate=0.65, decay_mult=0.))
    with pytest.raises(ValueError, match='encoder_prefix'):
        layer_decay_groups(TinySegmentor(), 1e-3, 0.05, RATE, encoder_prefix='image_encoder.')
