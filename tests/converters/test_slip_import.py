"""SLIP-repository checkpoints: our tiny SLIP / CLIP model -> a file in SLIP's format -> import -> identical model."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import detailclip.models  # noqa: F401  (registers the model classes)
from detailclip.registry import MODELS
from detailclip.testing import ROOT, shrink_model
from detailclip.converters.reference import convert_reference_slip, is_reference_detailclip, is_reference_slip
from tools.model_converters import import_slip as importer

SLIP_CONFIG = osp.join(ROOT, 'configs/_base_/models/slip_vit-base-p16.py')
CLIP_CONFIG = osp.join(ROOT, 'configs/_base_/models/clip_vit-base-p16.py')
# the options that make the base configs as small as shrink_model makes them (for the tool's --cfg-options)
TINY = {'model.image_encoder.embed_dim': 32, 'model.image_encoder.depth': 1, 'model.image_encoder.num_heads': 2,
        'model.text_encoder.width': 32, 'model.text_encoder.layers': 1, 'model.text_encoder.heads': 2,
        'model.embed_dim': 32}
TINY_SIMCLR = {'model.objectives.simclr.head.in_dim': 32, 'model.objectives.simclr.head.hidden_dim': 64,
               'model.objectives.simclr.head.out_dim': 32}
# SLIP's names for our model's parts, written out independently of the importer's tables
SLIP_NAMES = (('image_encoder.', 'visual.'), ('text_encoder.transformer.', 'transformer.'),
              ('text_encoder.token_embedding.', 'token_embedding.'), ('text_encoder.ln_final.', 'ln_final.'),
              ('text_encoder.positional_embedding', 'positional_embedding'), ('logit_scale', 'logit_scale'),
              ('objectives.simclr.head.0.', 'image_mlp.layer1.'), ('objectives.simclr.head.1.', 'image_mlp.bn1.'),
              ('objectives.simclr.head.3.', 'image_mlp.layer2.'), ('objectives.simclr.head.4.', 'image_mlp.bn2.'),
              ('objectives.simclr.head.6.', 'image_mlp.layer3.'))


def _build(config: str, seed: int):
    torch.manual_seed(seed)
    model = MODELS.build(shrink_model(Config.fromfile(config).model.to_dict()))
    with torch.no_grad():  # trained-looking BatchNorm statistics
        for name, buf in model.named_buffers():
            if name.endswith(('running_mean', 'running_var')):
                buf.copy_(torch.rand_like(buf) + 0.5)
    return model.eval()


def to_slip_format(state_dict: dict) -> dict:
    """Our state dict as SLIP's DDP model would save it: renamed, projections as (in, out) matrices, 'module.'."""
    out = {}
    for key, value in state_dict.items():
        if key in ('image_projection.weight', 'text_projection.weight'):
            out['module.' + key[:-len('.weight')]] = value.t().clone()
            continue
        ours, theirs = next((o, t) for o, t in SLIP_NAMES if key.startswith(o))
        out['module.' + theirs + key[len(ours):]] = value.clone()
    return out


def _write(path, state_dict: dict) -> None:
    args = argparse.Namespace(model='SLIP_VITB16', ssl_mlp_dim=4096, ssl_emb_dim=256, ssl_scale=1.0, lr=3e-3)
    torch.save(dict(epoch=25, state_dict=state_dict, optimizer={'state': {}}, scaler={'scale': 65536.0},
                    best_acc1=42.8, args=args), path)


def _outputs(model):
    images = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(1, 49000, (2, 77), generator=torch.Generator().manual_seed(1))
    tokens[:, 9] = 49407
    with torch.no_grad():
        out = dict(image=model.encode_image(images), text=model.encode_text(tokens))
        if 'simclr' in model.objectives:
            out['ssl'] = model.objectives.simclr.head(model.encode_cls(images))
    return out


@pytest.mark.parametrize('config, options', [(SLIP_CONFIG, {**TINY, **TINY_SIMCLR}), (CLIP_CONFIG, TINY)],
                         ids=['slip', 'clip'])
def test_round_trip_through_the_tool(config, options, tmp_path):
    source = _build(config, seed=0)
    slip_format = to_slip_format(source.state_dict())
    assert is_reference_slip(slip_format) and not is_reference_detailclip(slip_format)
    _write(tmp_path / 'checkpoint_best.pt', slip_format)
    importer.main([str(tmp_path / 'checkpoint_best.pt'), str(tmp_path / 'out.pth'), '--config', config,
                   '--cfg-options', *[f'{k}={v}' for k, v in options.items()]])
    saved = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert saved['meta']['epoch'] == 25 and saved['meta']['reference_args']['ssl_mlp_dim'] == 4096
    imported = _build(config, seed=1)
    imported.load_state_dict(saved['state_dict'], strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(imported.state_dict()[key], value), key
    for name, value in _outputs(source).items():
        assert torch.equal(_outputs(imported)[name], value), name


def test_mismatches_name_the_keys():
    slip, clip = _build(SLIP_CONFIG, 0), _build(CLIP_CONFIG, 0)
    slip_format = to_slip_format(slip.state_dict())
    unexpected = r"SLIP checkpoint does not match.*unexpected keys: \['objectives\.simclr\.head\.0\.bias"
    with pytest.raises(ValueError, match=unexpected):
        convert_reference_slip(slip_format, clip.state_dict())
    with pytest.raises(ValueError, match=r"missing keys: \['objectives\.simclr\.head\.0\.bias"):
        convert_reference_slip(to_slip_format(clip.state_dict()), slip.state_dict())
    renamed = convert_reference_slip(slip_format, slip.state_dict(), simclr='simclr')
    assert torch.equal(renamed['image_projection.weight'], slip.image_projection.weight)
    with pytest.raises(ValueError, match=r"missing keys: \['objectives\.simclr"):
        convert_reference_slip({k.replace('image_mlp', 'ssl_mlp'): v for k, v in slip_format.items()},
                               slip.state_dict())
    with_teacher = dict(slip_format, **{'module.visual_ema.cls_token': torch.zeros(1)})
    with pytest.raises(ValueError, match='EMA teacher'):
        convert_reference_slip(with_teacher, slip.state_dict())
