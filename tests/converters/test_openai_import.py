"""OpenAI CLIP ViT import: a tiny open_clip model's weights (state dict and TorchScript archive) give our
ImageTextPretrainer the same image and text embeddings."""
import os.path as osp

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

import detailclip.models  # noqa: F401  (registers the model classes)
from detailclip.datasets.tokenizer import CLIPTokenizer
from detailclip.testing import ROOT
from detailclip.converters.model_import import build_model, is_torchscript_archive, load_checkpoint_file
from detailclip.converters.openai_import import convert_openai_clip, is_openai_clip
from tools.model_converters import import_openai_clip as importer

CONFIG = osp.join(ROOT, 'configs/clip/clip_vit-base-p16_openai.py')
IMG, PATCH, WIDTH, LAYERS, HEADS, EMBED, CTX = 32, 8, 32, 2, 2, 16, 12
OPTIONS = {'model.image_encoder.img_size': IMG, 'model.image_encoder.patch_size': PATCH,
           'model.image_encoder.embed_dim': WIDTH, 'model.image_encoder.depth': LAYERS,
           'model.image_encoder.num_heads': HEADS, 'model.text_encoder.context_length': CTX,
           'model.text_encoder.width': WIDTH, 'model.text_encoder.layers': LAYERS,
           'model.text_encoder.heads': HEADS, 'model.embed_dim': EMBED}


@pytest.fixture(scope='module')
def openai_model():
    """open_clip's OpenAI-architecture CLIP (QuickGELU, pre-norm ViT) at tiny dims, every weight randomised so
    LayerNorm affines, biases and embeddings all matter."""
    torch.manual_seed(0)
    model = CLIP(embed_dim=EMBED, quick_gelu=True,
                 vision_cfg=CLIPVisionCfg(layers=LAYERS, width=WIDTH, head_width=WIDTH // HEADS, patch_size=PATCH,
                                          image_size=IMG),
                 text_cfg=CLIPTextCfg(context_length=CTX, width=WIDTH, heads=HEADS, layers=LAYERS))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope='module')
def inputs():
    images = torch.randn(3, 3, IMG, IMG, generator=torch.Generator().manual_seed(1))
    tokens = CLIPTokenizer(CTX)(['a photo of a cat', 'a small red triangle on the left', 'itap of a tench'])
    return images, tokens


def _ours():
    return build_model(CONFIG, OPTIONS).eval()


def _assert_same_embeddings(ours, openai_model, inputs):
    images, tokens = inputs
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_image(images), openai_model.encode_image(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.encode_text(tokens), openai_model.encode_text(tokens), rtol=1e-5, atol=1e-5)
        assert torch.equal(ours.logit_scale, openai_model.logit_scale)


def test_state_dict_import_matches_open_clip(openai_model, inputs):
    state_dict = openai_model.state_dict()
    assert is_openai_clip(state_dict) and not is_openai_clip(_ours().state_dict())
    model = _ours()
    model.load_state_dict(convert_openai_clip(state_dict, model.state_dict()), strict=True)
    _assert_same_embeddings(model, openai_model, inputs)
    # fp16 weights (as OpenAI ships them) are cast to the model's dtype
    half = convert_openai_clip({'module.' + k: v.half() for k, v in state_dict.items()}, model.state_dict())
    assert all(v.dtype == torch.float32 for v in half.values())


def test_options_matter(openai_model, inputs):
    """Without OpenAI's pre-norm the weights do not fit; with GELU or eps 1e-6 the embeddings differ."""
    state_dict = openai_model.state_dict()
    plain = build_model(CONFIG, {**OPTIONS, 'model.image_encoder.pre_norm': False})
    with pytest.raises(ValueError, match=r"unexpected keys: .*image_encoder\.norm_pre\.weight"):
        convert_openai_clip(state_dict, plain.state_dict())
    images, _ = inputs
    for option, value in (('act_layer', 'gelu'), ('norm_eps', 1e-6)):
        model = build_model(CONFIG, {**OPTIONS, f'model.image_encoder.{option}': value}).eval()
        model.load_state_dict(convert_openai_clip(state_dict, model.state_dict()), strict=True)
        with torch.no_grad():
            assert not torch.allclose(model.encode_image(images), openai_model.encode_image(images), atol=1e-5)


def test_bad_checkpoints_name_the_problem(openai_model):
    model = _ours()
    state_dict = dict(openai_model.state_dict())
    with pytest.raises(ValueError, match=r"not an OpenAI CLIP ViT.*visual\.proj"):
        convert_openai_clip({k: v for k, v in state_dict.items() if k != 'visual.proj'}, model.state_dict())
    state_dict['visual.attnpool.c_proj.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys: \['visual\.attnpool\.c_proj\.weight'\]"):
        convert_openai_clip(state_dict, model.state_dict())
    state_dict = dict(openai_model.state_dict(), context_length=torch.tensor(77))
    with pytest.raises(ValueError, match='context_length=77.*model.text_encoder.context_length'):
        convert_openai_clip(state_dict, model.state_dict())


def test_torchscript_archive_through_the_tool(openai_model, inputs, tmp_path):
    """A traced archive (OpenAI distributes TorchScript) -> tool -> a weights-only checkpoint with the same outputs."""
    images, tokens = inputs
    archive = str(tmp_path / 'ViT-tiny.pt')
    with pytest.warns(Warning):  # torch.jit.trace is deprecated; OpenAI's files are still TorchScript
        torch.jit.trace(openai_model, (images, tokens), check_trace=False).save(archive)
    plain = str(tmp_path / 'open_clip.pt')
    torch.save(openai_model.state_dict(), plain)
    assert is_torchscript_archive(archive) and not is_torchscript_archive(plain)
    assert load_checkpoint_file(archive).keys() == {*openai_model.state_dict(), 'attn_mask'}
    options = [f'{k}={v}' for k, v in OPTIONS.items()]
    for source in (archive, plain):
        out = str(tmp_path / 'converted.pth')
        importer.main([source, out, '--cfg-options', *options])
        saved = torch.load(out, weights_only=True)
        assert saved['meta']['source_format'] == 'openai-clip'
        model = _ours()
        model.load_state_dict(saved['state_dict'], strict=True)
        _assert_same_embeddings(model, openai_model, inputs)
