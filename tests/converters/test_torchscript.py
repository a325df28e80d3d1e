"""TorchScript archives are read without running their code: a genuine archive gives ``torch.jit.load``'s state
dict; a crafted one is refused by every entry point that loads a checkpoint, and nothing of it runs."""
import os
import pickle
import warnings
import zipfile

import pytest
import torch
from torch import nn

from detailclip.converters.export import load_backbone
from detailclip.converters.model_import import load_checkpoint_file
from detailclip.converters.torchscript import UnsafeArchiveError, read_torchscript_state_dict
from detailclip.utils.checkpoint import load_from_local
from tools import dense_probe, downstream
from tools.model_converters import export_backbone, import_detailclip_reference, import_openai_clip, import_slip


class Block(nn.Module):
    """A residual block with CLIP's key layout (``ln_1``, ``attn.in_proj_weight``, ``mlp.c_fc``), a buffer and a
    plain tensor attribute (not state)."""

    def __init__(self, width: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2)
        self.mlp = nn.Sequential()
        self.mlp.add_module('c_fc', nn.Linear(width, 2 * width).half())
        self.register_buffer('steps', torch.arange(3))
        self.not_state = torch.zeros(1)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x), self.ln_1(x), self.ln_1(x), need_weights=False)[0]
        return x + self.mlp(x.half()).float()[..., :x.shape[-1]] + self.not_state


class TinyCLIPText(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.token_embedding = nn.Embedding(10, width)
        self.positional_embedding = nn.Parameter(torch.randn(4, width))
        self.transformer = nn.Sequential(Block(width), Block(width))
        self.text_projection = nn.Parameter(torch.randn(width, 4))
        self.tied = self.text_projection  # one record, two names

    def forward(self, tokens):
        return self.transformer(self.token_embedding(tokens) + self.positional_embedding) @ self.tied


def save_script(module: nn.Module, path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # torch.jit is deprecated; released checkpoints still use it
        torch.jit.script(module).save(str(path))
    return str(path)


def jit_state_dict(path: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        return torch.jit.load(path).state_dict()


@pytest.fixture
def crafted(tmp_path):
    """A genuine archive whose ``data.pkl`` is replaced by a pickle that writes a file when unpickled."""
    marker = tmp_path / 'written_by_the_archive'

    class Payload:
        def __reduce__(self):
            return exec, (f'open({str(marker)!r}, "w").write("pwned")', )

    genuine = save_script(nn.Linear(2, 2), tmp_path / 'genuine.pt')
    path = tmp_path / 'ViT-B-16.pt'
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(path, 'w') as out:
        for item in source.infolist():
            data = source.read(item)
            out.writestr(item.filename, pickle.dumps(Payload(), 2) if item.filename.endswith('/data.pkl') else data)
    return str(path), marker


def test_genuine_archive_gives_the_jit_state_dict(tmp_path):
    torch.manual_seed(0)
    path = save_script(TinyCLIPText(), tmp_path / 'text.pt')
    expected, read = jit_state_dict(path), read_torchscript_state_dict(path)
    assert read.keys() == expected.keys() and 'transformer.0.steps' in read and 'transformer.0.not_state' not in read
    for key, tensor in expected.items():
        assert read[key].dtype == tensor.dtype and torch.equal(read[key], tensor), key
    assert read['transformer.0.mlp.c_fc.weight'].dtype == torch.float16


def test_crafted_pickle_is_refused_without_running(crafted):
    path, marker = crafted
    with pytest.raises(UnsafeArchiveError, match=r'asks for .*exec.*not read'):
        read_torchscript_state_dict(path)
    assert not marker.exists()


ENTRY_POINTS = {
    'load_checkpoint_file': lambda p, out: load_checkpoint_file(p),
    'import_openai_clip': lambda p, out: import_openai_clip.main([p, out]),
    'import_slip': lambda p, out: import_slip.main([p, out]),
    'import_detailclip_reference': lambda p, out: import_detailclip_reference.main([p, out]),
    'load_from / resume': lambda p, out: load_from_local(p),
    'load_backbone': lambda p, out: load_backbone(p),
    'export_backbone': lambda p, out: export_backbone.main([p, out]),
    'tools/downstream.py': lambda p, out: downstream.prepare_backbone(p, os.path.dirname(out), teacher=False),
    'tools/dense_probe.py': lambda p, out: dense_probe._load_torch(p),
}


@pytest.mark.parametrize('entry', ENTRY_POINTS)
def test_every_entry_point_refuses_the_crafted_archive(crafted, tmp_path, entry):
    path, marker = crafted
    with pytest.raises((pickle.UnpicklingError, RuntimeError, ValueError, SystemExit)):
        ENTRY_POINTS[entry](path, str(tmp_path / 'out.pth'))
    assert not marker.exists()
