"""Import of the DetailCLIP reference checkpoint format, and parity with one step of the public reference.

The fixture (``detailclip_reference_small.pt``, see ``shared/fixtures/README.md``) holds a small reference model's
state dict, its inputs, the attention masks it chose and every loss term it computed, in fp32 on the CPU.
"""
import argparse
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config

import detailclip.models  # noqa: F401  (registers the model classes)
from detailclip.models.ops import sincos_pos_embed_2d
from detailclip.registry import MODELS
from detailclip.testing import ROOT
from detailclip.converters.reference import (check_decoder_pos_embed, convert_reference_detailclip,
                                             is_reference_detailclip, strip_prefix)
from tools.model_converters import import_detailclip_reference as importer

CONFIG = osp.join(ROOT, 'configs/_base_/models/detailclip_vit-base-p16.py')
FIXTURE = 'detailclip_reference_small.pt'
ACCURACIES = ('clip_acc', )
# our loss() keys for the reference's logged terms
TERMS = dict(contra_loss_1='clip_view0', contra_loss_2='clip_view1', reconst_loss='loss_pixel',
             ibot_patch_loss='loss_ibot_patch', ibot_cls_loss='loss_ibot_cls', clip_acc='clip_acc')


def _fixture_path() -> str:
    return osp.join(os.environ.get('DETAILCLIP_FIXTURES', osp.join(ROOT, '..', 'shared', 'fixtures')), FIXTURE)


@pytest.fixture(scope='module')
def reference():
    path = _fixture_path()
    if not osp.isfile(path):
        message = (f'reference fixture {FIXTURE} not found at {osp.abspath(path)}: it belongs in '
                   f'<repo>/../shared/fixtures/ (or set DETAILCLIP_FIXTURES to the folder holding it)')
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(message)  # CI has the fixture: a missing one is a broken checkout
        pytest.skip(message)
    return torch.load(path, weights_only=True)


def _options(dims: dict, mae: str = 'mae', ibot: str = 'ibot') -> dict:
    """Config overrides giving the reference model's dimensions (``dims`` from the fixture)."""
    width = dims['vision_width']
    return {'model.image_encoder.embed_dim': width, 'model.image_encoder.depth': dims['depth'],
            'model.image_encoder.num_heads': dims['heads'], 'model.embed_dim': dims['embed_dim'],
            'model.text_encoder.width': dims['text_width'], 'model.text_encoder.layers': dims['text_layers'],
            'model.text_encoder.heads': dims['text_heads'], 'model.text_encoder.context_length': dims['context_length'],
            'model.text_encoder.vocab_size': dims['vocab_size'],
            f'model.objectives.{mae}.decoder.in_dim': width, f'model.objectives.{mae}.decoder.width': width,
            f'model.objectives.{mae}.decoder.num_heads': dims['decoder_heads'],
            f'model.objectives.{ibot}.head.in_dim': width, f'model.objectives.{ibot}.head.out_dim': dims['ibot_out']}


def _build(dims: dict, mae: str = 'mae', ibot: str = 'ibot'):
    """The DetailCLIP base config at the fixture's dimensions, objectives renamed to ``mae`` / ``ibot``."""
    cfg = Config.fromfile(CONFIG)
    objectives = cfg.model.objectives
    cfg.model.objectives = {'clip': objectives.clip, mae: objectives.mae, ibot: objectives.ibot}
    cfg.merge_from_dict(_options(dims, mae, ibot))
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def model(reference):
    """The target of conversions; tests do not change it."""
    return _build(reference['dims'])


def _loaded(reference):
    """A fresh model (iBOT centres zero, as at the reference step) with the fixture's weights, in train mode."""
    model = _build(reference['dims'])
    model.load_state_dict(convert_reference_detailclip(reference['state_dict'], model.state_dict()), strict=True)
    model.set_teacher_temp(cls=0.04, patch=0.04)
    return model.train()


def _rel(ours: torch.Tensor, theirs: float) -> float:
    return abs(float(ours.detach()) - theirs) / abs(theirs)


def _matches(key: str, ours: torch.Tensor, theirs: float) -> bool:
    """Losses within 1e-5 relative error; accuracies (percentages, possibly 0) within 1e-4 points."""
    if key in ACCURACIES:
        return abs(float(ours.detach()) - theirs) <= 1e-4
    return _rel(ours, theirs) <= 1e-5


def test_masks_match_reference(reference):
    """The teacher's CLS attention and the attention masker choose exactly the reference's removed tokens."""
    model = _loaded(reference)
    u, v = reference['u'], reference['v']
    context = dict(views=[u, v], teacher_views=[u, v], boxes=None, grid_sizes=[(14, 14)] * 2,
                   teacher=model.teacher.encode([u, v]))
    mask_u, mask_v = model.masker(context)
    assert torch.equal(mask_u, reference['mask_u'])
    assert torch.equal(mask_v, reference['mask_v'])


def test_loss_terms_match_reference(reference):
    """Every logged loss term of one reference step within 1e-5 relative error; backward works in fp32 (Q-D2)."""
    model = _loaded(reference)
    # the reference semantics come from the base config (docs/methods.md 11)
    assert (model.masker.ratio, model.masker.ratio_semantics) == (0.5, 'keep_plus_one')
    assert model.objectives.ibot.patch_source == 'decoder' and model.objectives.mae.loss.norm_pix
    expected = reference['losses']
    out = model.loss(dict(views=[reference['u'], reference['v']], text=reference['text']))
    for ref_key, our_key in TERMS.items():
        assert _matches(ref_key, out[our_key], expected[ref_key]), (ref_key, float(out[our_key]), expected[ref_key])
    clip = 0.5 * (expected['contra_loss_1'] + expected['contra_loss_2'])
    assert _rel(out['loss_clip'], clip) <= 1e-5
    assert _rel(out['loss_ibot_cls'] + out['loss_ibot_patch'], expected['ibot_loss']) <= 1e-5
    total = sum(value for key, value in out.items() if key.startswith('loss_'))
    assert _rel(total, expected['loss']) <= 1e-5
    total.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None and p.grad.isfinite().all() for p in trainable.values())
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize('prefix', ['', 'module.'])
def test_conversion_maps_every_entry(model, reference, prefix):
    """Renames, transposed projections, the teacher's text embeddings from the student's (Q-D13), kept centres."""
    ref = {prefix + k: v for k, v in reference['state_dict'].items()}
    assert is_reference_detailclip(ref) and not is_reference_detailclip(model.state_dict())
    target = model.state_dict()
    target['objectives.ibot.loss.cls_center'] = torch.full_like(target['objectives.ibot.loss.cls_center'], 3.)
    out = convert_reference_detailclip(ref, target)
    plain = reference['state_dict']
    assert torch.equal(out['image_projection.weight'], plain['image_projection'].t())
    assert torch.equal(out['teacher.copies.text_projection.weight'], plain['text_projection_e'].t())
    assert torch.equal(out['teacher.copies.text_encoder.transformer.resblocks.1.mlp.c_fc.weight'],
                       plain['transformer_e.resblocks.1.mlp.c_fc.weight'])
    for name in ('token_embedding.weight', 'positional_embedding', 'ln_final.weight', 'ln_final.bias'):
        assert torch.equal(out['teacher.copies.text_encoder.' + name], plain[name])
    assert torch.equal(out['teacher.copies.objectives__ibot__head.last_layer.weight_v'],
                       plain['ibot_head_e.last_layer.weight_v'])
    assert torch.equal(out['objectives.mae.pixel_head.proj.weight'], plain['reconstruction_pred.weight'])
    assert torch.equal(out['objectives.ibot.loss.cls_center'], target['objectives.ibot.loss.cls_center'])


def test_conversion_with_other_objective_names(reference):
    """Objective names come from the config."""
    model = _build(reference['dims'], mae='recon', ibot='distill')
    out = convert_reference_detailclip(reference['state_dict'], model.state_dict(), mae='recon', ibot='distill')
    model.load_state_dict(out, strict=True)
    assert torch.equal(model.objectives.recon.decoder.mask_token, reference['state_dict']['mask_token'])


@pytest.mark.parametrize('edit, named', [
    (lambda sd: sd.update({'module.extra_head.weight': torch.zeros(1)}), 'extra_head.weight'),
    (lambda sd: sd.pop('module.visual.norm.bias'), 'image_encoder.norm.bias'),
    (lambda sd: sd.pop('module.ibot_head_e.mlp.4.bias'), 'teacher.copies.objectives__ibot__head.mlp.4.bias'),
    (lambda sd: sd.update({'module.logit_scale': torch.zeros(2)}), 'logit_scale'),
])
def test_conversion_names_bad_keys(model, reference, edit, named):
    ref = {'module.' + k: v for k, v in reference['state_dict'].items()}
    edit(ref)
    with pytest.raises(ValueError, match=named.replace('.', r'\.')):
        convert_reference_detailclip(ref, model.state_dict())


def test_conversion_with_other_objective_names_fails_when_not_given(reference):
    model = _build(reference['dims'], mae='recon', ibot='distill')
    with pytest.raises(ValueError, match=r'objectives\.mae\.decoder\.mask_token'):
        convert_reference_detailclip(reference['state_dict'], model.state_dict())


def test_conversion_checks_dropped_entries(model, reference):
    """decoder_pos_embed must be our fixed table and last_layer2 the shared last_layer; neither is loaded."""
    pos = reference['state_dict']['decoder_pos_embed']
    assert torch.allclose(pos[0], sincos_pos_embed_2d((14, 14), pos.shape[-1]), atol=1e-6)
    check_decoder_pos_embed(pos)
    with pytest.raises(ValueError, match='sin-cos'):
        check_decoder_pos_embed(pos + 1e-4)
    ref = dict(reference['state_dict'])
    ref['ibot_head.last_layer2.weight_v'] = ref['ibot_head.last_layer2.weight_v'] + 1
    with pytest.raises(ValueError, match=r'ibot\.head\.last_layer2\.weight_v'):
        convert_reference_detailclip(ref, model.state_dict())
    assert not is_reference_detailclip(strip_prefix({'module.visual.cls_token': pos}))


class _Callable:
    """Pickles as a call of an arbitrary global, which a weights-only load must refuse (test-only)."""

    def __reduce__(self):
        return os.getcwd, ()


def _write_reference(path, reference, **extra):
    """A reference-format training checkpoint: DDP prefix, argparse args, epoch (docs/methods.md 7.6)."""
    state_dict = {'module.' + k: v for k, v in reference['state_dict'].items()}
    args = argparse.Namespace(model='DetailCLIP_VITB16', mask_ratio=0.5, epochs=50, lr=5e-4)
    torch.save(dict(epoch=50, state_dict=state_dict, best_acc=1.5, args=args, **extra), path)


def _cli(ckpt, out, dims):
    options = [f'{k}={v}' for k, v in _options(dims).items()]
    return importer.main([str(ckpt), str(out), '--config', CONFIG, '--cfg-options', *options])


def test_cli_round_trip(model, reference, tmp_path):
    """CKPT -> OUT loads weights-only and strictly into the model; its weights are the converted reference's."""
    _write_reference(tmp_path / 'checkpoint.pt', reference)
    _cli(tmp_path / 'checkpoint.pt', tmp_path / 'out.pth', reference['dims'])
    saved = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert saved['meta']['epoch'] == 50 and saved['meta']['reference_args']['mask_ratio'] == 0.5
    expected = convert_reference_detailclip(reference['state_dict'], model.state_dict())
    assert saved['state_dict'].keys() == expected.keys()
    assert all(torch.equal(saved['state_dict'][k], v) for k, v in expected.items())
    fresh = _build(reference['dims'])
    fresh.load_state_dict(saved['state_dict'], strict=True)


def test_cli_refuses_bad_checkpoints(reference, tmp_path):
    """Unexpected keys fail naming them; any global besides argparse.Namespace fails to unpickle."""
    extra = {**reference['state_dict'], 'extra_head.weight': torch.ones(1)}
    _write_reference(tmp_path / 'extra.pt', {**reference, 'state_dict': extra})
    with pytest.raises(ValueError, match=r"unexpected keys: \['extra_head\.weight'\]"):
        _cli(tmp_path / 'extra.pt', tmp_path / 'out.pth', reference['dims'])
    with pytest.raises(pickle.UnpicklingError, match='Namespace'):  # the allow-list is what lets `args` through
        torch.load(tmp_path / 'extra.pt', weights_only=True)
    _write_reference(tmp_path / 'unsafe.pt', reference, hook=_Callable())
    with pytest.raises(pickle.UnpicklingError, match='getcwd'):
        importer.load_reference_checkpoint(str(tmp_path / 'unsafe.pt'))
    assert not (tmp_path / 'out.pth').exists()
