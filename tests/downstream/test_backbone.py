"""ViTBackbone: loads an export strictly, reproduces the pretrainer's encoder features, FPN strides, freezing,
gradient checkpointing and registration in mmseg's and mmdet's registries."""
import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as MMSEG_MODELS
from safetensors.torch import load_file, save_file

from detailclip.converters.export import export_backbone, resize_pos_embed, save_backbone
from downstream import ViTBackbone

TINY = dict(patch_size=16, embed_dim=32, depth=2, num_heads=2, stem='conv')


@pytest.fixture(scope='module')
def exported(tiny_pretrainer, tmp_path_factory):
    """Paths of the student export (.pth, .safetensors) of the tiny pretrainer."""
    _, checkpoint = tiny_pretrainer
    return save_backbone(*export_backbone(checkpoint), str(tmp_path_factory.mktemp('export') / 'student'))


def _backbone(path=None, **kwargs):
    backbone = ViTBackbone(**{**TINY, 'img_size': 64, 'out_indices': (0, 1), 'norm_cfg': dict(type='BN'),
                              'pretrained': path, **kwargs})
    backbone.init_weights()
    return backbone.eval()


@pytest.mark.parametrize('size', [(64, 64), (96, 48)])
@pytest.mark.parametrize('fmt', [0, 1])
def test_last_level_equals_the_pretrainer_tokens(tiny_pretrainer, exported, size, fmt):
    """Strict load (any missing key would raise), then the last tapped level = the encoder's normed output tokens,
    also at another, non-square input size (pos_embed resampled at run time on both sides)."""
    model, _ = tiny_pretrainer
    backbone = _backbone(exported[fmt])
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        last = backbone(x)[-1]
        tokens = model.image_encoder.forward_encoder(x)['tokens'][:, 1:]
    grid = (size[0] // 16, size[1] // 16)
    assert last.shape == (2, 32, *grid)
    torch.testing.assert_close(last.flatten(2).transpose(1, 2), tokens, rtol=0, atol=1e-6)


def test_pos_embed_resized_at_load(exported):
    backbone = _backbone(exported[0], img_size=(96, 64))
    trained = load_file(exported[1])
    assert torch.equal(backbone.encoder.pos_embed, resize_pos_embed(trained, (6, 4), (4, 4))['pos_embed'])


def test_tampered_key_fails_naming_it(exported, tmp_path):
    state_dict = load_file(exported[1])
    state_dict['blocks.1.mlp.fc3.weight'] = state_dict.pop('blocks.1.mlp.fc2.weight')
    save_file(state_dict, str(tmp_path / 'tampered.safetensors'))
    with pytest.raises(ValueError, match=r'missing keys \(blocks.1.mlp.fc2.weight\).*unexpected keys '
                                         r'\(blocks.1.mlp.fc3.weight\)'):
        _backbone(str(tmp_path / 'tampered.safetensors'))


def test_wrong_architecture_fails(exported):
    with pytest.raises(ValueError, match='missing keys'):
        _backbone(exported[0], stem='patch')
    with pytest.raises(ValueError, match=r'shapes differ.*meta\["encoder"\]'):
        _backbone(exported[0], **{**TINY, 'embed_dim': 64, 'num_heads': 2})


@pytest.mark.parametrize('patch_size, shapes', [
    (16, [(32, 32), (16, 16), (8, 8), (4, 4)]),
    (8, [(32, 32), (16, 16), (8, 8), (4, 4)]),
    (32, [(32, 32), (16, 16), (8, 8), (4, 4)]),
])
def test_fpn_adapter_gives_strides_4_to_32(patch_size, shapes):
    backbone = ViTBackbone(img_size=128, patch_size=patch_size, embed_dim=16, depth=4, num_heads=2,
                           out_indices=(0, 1, 2, 3), fpn_adapter=True, norm_cfg=dict(type='BN'))
    outs = backbone(torch.randn(2, 3, 128, 128))
    assert [tuple(o.shape) for o in outs] == [(2, 16, *s) for s in shapes]


@pytest.mark.parametrize('fpn_adapter', [False, True])
def test_levels_are_contiguous_for_mmcv_roi_align(fpn_adapter):
    """Every level, and a convolution of it, is contiguous NCHW, so that mmcv's CPU RoIAlign (which reads the memory
    as NCHW) pools the same features as torchvision's stride-aware one; a channels-last level scrambles the RoI
    features of every Mask R-CNN head."""
    from mmcv.ops import RoIAlign
    from torchvision.ops import roi_align
    backbone = ViTBackbone(img_size=64, patch_size=8, embed_dim=16, depth=2, num_heads=2, out_indices=(0, 1),
                           fpn_adapter=fpn_adapter, fpn_strides=(4, 8), norm_cfg=dict(type='BN')).eval()
    rois = torch.tensor([[0, 3., 5., 40., 30.], [1, 20., 12., 61., 60.]])
    with torch.no_grad():
        levels = backbone(torch.randn(2, 3, 64, 64))
        for level in levels + (torch.nn.Conv2d(16, 8, 1)(levels[-1]),):
            assert level.is_contiguous()
            scale = level.shape[-1] / 64
            assert torch.allclose(RoIAlign(7, scale, 0, aligned=True)(level, rois),
                                  roi_align(level, rois, 7, scale, 0, aligned=True), atol=1e-6)


def test_fpn_adapter_is_ibots_at_patch_16():
    backbone = ViTBackbone(img_size=64, patch_size=16, embed_dim=16, depth=4, num_heads=2, out_indices=(0, 1, 2, 3),
                           fpn_adapter=True, norm_cfg=dict(type='BN'))
    kinds = [[type(m).__name__ for m in level.modules()][1:] if len(list(level.modules())) > 1 else
             [type(level).__name__] for level in backbone.fpn]
    assert kinds == [['ConvTranspose2d', 'BatchNorm2d', 'GELU', 'ConvTranspose2d'], ['ConvTranspose2d'],
                     ['Identity'], ['MaxPool2d']]


def test_bad_options_raise():
    with pytest.raises(ValueError, match='power of two'):
        ViTBackbone(img_size=56, patch_size=14, embed_dim=16, depth=4, num_heads=2, out_indices=(0, 1, 2, 3),
                    fpn_adapter=True, norm_cfg=dict(type='BN'))
    with pytest.raises(ValueError, match='ascending block indices in 0..3'):
        ViTBackbone(img_size=64, embed_dim=16, depth=4, num_heads=2, out_indices=(3, 5, 7, 11))
    with pytest.raises(ValueError, match='one stride'):
        ViTBackbone(img_size=64, embed_dim=16, depth=4, num_heads=2, out_indices=(1, 3), fpn_adapter=True)


def test_frozen_stages_freeze_and_stay_in_eval():
    backbone = ViTBackbone(img_size=64, embed_dim=16, depth=4, num_heads=2, drop_path_rate=0.5,
                           out_indices=(0, 1, 2, 3), frozen_stages=2)
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert all(not n.startswith(('encoder.blocks.0.', 'encoder.blocks.1.', 'encoder.patch_embed', 'encoder.cls',
                                 'encoder.pos')) for n in trainable)
    assert any(n.startswith('encoder.blocks.2.') for n in trainable) and 'encoder.norm.weight' in trainable
    backbone.train()
    assert not backbone.encoder.blocks[1].training and backbone.encoder.blocks[2].training
    probe = ViTBackbone(img_size=64, embed_dim=16, depth=4, num_heads=2, out_indices=(0, 1, 2, 3), frozen_stages=4)
    assert not any(p.requires_grad for p in probe.parameters())


def test_with_cp_is_exact():
    torch.manual_seed(0)
    plain = ViTBackbone(img_size=64, embed_dim=16, depth=2, num_heads=2, out_indices=(0, 1))
    checkpointed = ViTBackbone(img_size=64, embed_dim=16, depth=2, num_heads=2, out_indices=(0, 1), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for backbone in (plain, checkpointed):
        backbone.train()
        sum(o.square().mean() for o in backbone(x)).backward()
        grads.append(backbone.encoder.blocks[0].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize('registry', [MMSEG_MODELS, MMDET_MODELS])
def test_registered_in_mmseg_and_mmdet(registry):
    with DefaultScope.overwrite_default_scope(registry.scope):  # an earlier Runner may have left its scope current
        backbone = registry.build(dict(type='ViTBackbone', img_size=64, embed_dim=16, depth=2, num_heads=2,
                                       out_indices=(0, 1)))
    assert isinstance(backbone, ViTBackbone)
