"""Backbone export (docs/methods.md 9.3): student/teacher encoder, DDP prefix, .pth == .safetensors, strict key check,
pos_embed resizing."""
import pytest
import torch
from mmengine.registry import DefaultScope
from timm.layers import resample_abs_pos_embed

from detailclip.converters.export import (build_encoder, export_backbone, extract_encoder, load_backbone,
                                          resize_pos_embed, save_backbone)
from detailclip.registry import MODELS
from detailclip.testing import TINY_CLIP, tiny_config
from tools.model_converters import export_backbone as export_tool


def _encoder_state(module):
    return {k: v for k, v in module.state_dict().items() if k != 'mask_token'}


@pytest.mark.parametrize('network', ['student', 'teacher'])
def test_export_takes_the_network_and_its_meta(tiny_pretrainer, network):
    model, checkpoint = tiny_pretrainer
    state_dict, meta = export_backbone(checkpoint, network)
    source = model.image_encoder if network == 'student' else model.teacher.copy_of('image_encoder')
    expected = _encoder_state(source)
    assert state_dict.keys() == expected.keys()
    assert all(torch.equal(state_dict[k], expected[k]) for k in expected)
    assert meta['network'] == network and meta['method'] == 'clip' and meta['objectives'] == ['clip']
    assert (meta['iter'], meta['epoch']) == (7, 0)
    assert meta['encoder'] == dict(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
                                   stem='conv')
    build_encoder(meta['encoder']).load_state_dict(state_dict, strict=True)


def test_student_and_teacher_differ(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    student, teacher = (export_backbone(checkpoint, t)[0] for t in ('student', 'teacher'))
    assert not torch.equal(student['pos_embed'], teacher['pos_embed'])


def test_ddp_prefix_is_stripped(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    wrapped = dict(checkpoint, state_dict={f'module.{k}': v for k, v in checkpoint['state_dict'].items()})
    plain, _ = export_backbone(checkpoint)
    ddp, _ = export_backbone(wrapped)
    assert plain.keys() == ddp.keys() and all(torch.equal(plain[k], ddp[k]) for k in plain)


def test_pth_and_safetensors_hold_the_same(tiny_pretrainer, tmp_path):
    _, checkpoint = tiny_pretrainer
    state_dict, meta = export_backbone(checkpoint, 'teacher')
    pth, safetensors = save_backbone(state_dict, meta, str(tmp_path / 'out' / 'backbone.pth'))
    out = tmp_path / 'out'
    assert (pth, safetensors) == (str(out / 'backbone.pth'), str(out / 'backbone.safetensors'))
    a, meta_a = load_backbone(pth)
    b, meta_b = load_backbone(safetensors)
    assert meta_a == meta_b == meta
    assert a.keys() == b.keys() == state_dict.keys()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], state_dict[k]) for k in a)


def test_strict_check_names_tampered_keys(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    tampered = dict(checkpoint['state_dict'])
    tampered['image_encoder.blocks.0.norm1.wieght'] = tampered.pop('image_encoder.blocks.0.norm1.weight')
    with pytest.raises(ValueError, match=r'1 missing keys \(blocks.0.norm1.weight\) and 1 unexpected keys '
                                         r'\(blocks.0.norm1.wieght\)'):
        export_backbone(dict(checkpoint, state_dict=tampered))


def test_errors_name_the_fix(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    no_teacher = {k: v for k, v in checkpoint['state_dict'].items() if not k.startswith('teacher.')}
    with pytest.raises(ValueError, match='without --teacher'):
        extract_encoder(no_teacher, 'teacher')
    with pytest.raises(ValueError, match='--config'):
        export_backbone(dict(state_dict=checkpoint['state_dict'], meta={}))


def test_img_size_resizes_pos_embed(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    trained, _ = export_backbone(checkpoint)
    resized, meta = export_backbone(checkpoint, img_size=(96, 64))
    assert meta['encoder']['img_size'] == [96, 64]
    assert resized['pos_embed'].shape == (1, 1 + 6 * 4, 32)
    expected = resample_abs_pos_embed(trained['pos_embed'], new_size=[6, 4], old_size=[4, 4], num_prefix_tokens=1)
    assert torch.equal(resized['pos_embed'], expected)
    assert torch.equal(resized['pos_embed'][:, 0], trained['pos_embed'][:, 0])  # the CLS entry is not resampled
    assert torch.equal(resize_pos_embed(trained, (4, 4))['pos_embed'], trained['pos_embed'])
    build_encoder(meta['encoder']).load_state_dict(resized, strict=True)


def test_resize_rejects_a_wrong_grid(tiny_pretrainer):
    _, checkpoint = tiny_pretrainer
    trained, _ = export_backbone(checkpoint)
    with pytest.raises(ValueError, match=r'not the \(2, 3\) grid'):
        resize_pos_embed(trained, (8, 8), old_grid=(2, 3))


def test_command_line_teacher_of_a_method_without_one(tmp_path):
    """CLIP has no EMA teacher: --teacher ends in one line that says to export the student, not a traceback."""
    cfg = tiny_config('unused', str(tmp_path), TINY_CLIP)
    with DefaultScope.overwrite_default_scope('detailclip'):
        model = MODELS.build(cfg.model)
    path = tmp_path / 'iter_1.pth'
    torch.save(dict(meta=dict(cfg=cfg.pretty_text, iter=1, epoch=0), state_dict=model.state_dict()), path)
    with pytest.raises(SystemExit, match='export the student, without --teacher') as err:
        export_tool.main([str(path), str(tmp_path / 'bb'), '--teacher'])
    assert '\n' not in str(err.value) and not list(tmp_path.glob('bb.*'))


def test_command_line(tiny_pretrainer, tmp_path):
    _, checkpoint = tiny_pretrainer
    torch.save(checkpoint, tmp_path / 'iter_7.pth')
    pth, safetensors = export_tool.main([str(tmp_path / 'iter_7.pth'), str(tmp_path / 'bb'), '--teacher',
                                         '--img-size', '128'])
    state_dict, meta = load_backbone(safetensors)
    assert meta['network'] == 'teacher' and meta['encoder']['img_size'] == 128
    assert state_dict['pos_embed'].shape == (1, 1 + 8 * 8, 32)
