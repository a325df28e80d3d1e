"""Every leaf config builds and, made tiny, takes one training step on a 2-sample batch of its own pipeline."""
import ast
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from detailclip.registry import DATASETS, MODELS
from detailclip.testing import ROOT, shrink_model, use_tiny_world

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))
LEAVES = [p for p in CONFIGS if '_base_' not in p]
MAX_DEPTH = 3  # _base_ -> method leaf -> variant (ablation, clean, shorter schedule)
# loss terms each objective type must return
EXPECTED = dict(CLIPObjective={'loss_clip'}, MAEObjective={'loss_pixel'}, SimCLRObjective={'loss_simclr'},
                BYOLObjective={'loss_byol'}, IBOTObjective={'loss_ibot_cls', 'loss_ibot_patch'},
                DINOObjective={'loss_dino'}, MaskedDistillationObjective={'loss_msd'},
                SupervisedObjective={'loss_cls'})


def test_every_method_has_a_paper_and_a_tiny_config():
    names = [osp.basename(p) for p in LEAVES]
    for method in ('clip', 'flip', 'slip', 'maskclip', 'aclip', 'detailclip', 'mae', 'dino', 'ibot', 'attmask', 'deit'):
        assert any(n.startswith(f'{method}_vit-base-p16') for n in names), method
        assert any(n.startswith(f'{method}_vit-tiny') and 'synthetic-world' in n for n in names), method


def base_files(path: str) -> list:
    """The files ``path``'s ``_base_`` names, as paths."""
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_' for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases]
    return []


def deepest_chain(path: str) -> list:
    """The longest ``_base_`` chain from ``path`` (itself first) to a config without bases."""
    return [path] + max((deepest_chain(b) for b in base_files(path)), key=len, default=[])


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def test_inheritance_is_at_most_three_levels(config):
    chain = deepest_chain(config)
    assert len(chain) <= MAX_DEPTH, ' -> '.join(osp.relpath(p, ROOT) for p in chain)


@pytest.mark.parametrize('config', LEAVES, ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def test_leaf_config_takes_a_training_step(config, tiny_world):
    init_default_scope('detailclip')
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(shrink_model(cfg.model.to_dict()))
    model.init_weights()
    if cfg.get('train_dataloader') is None:  # evaluation-only config (imported weights): it builds, nothing to train
        return
    model.train()
    dataset = DATASETS.build(use_tiny_world(cfg.train_dataloader.dataset.to_dict(), tiny_world))
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    losses = model(**data, mode='loss')

    expected = set().union(*(EXPECTED[type(o).__name__] for o in model.objectives.values()))
    assert {k for k in losses if k.startswith('loss_')} == expected
    for key, value in losses.items():
        assert math.isfinite(float(value.detach())), key
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    teacher = {id(p) for p in model.teacher.parameters()} if model.teacher is not None else set()
    for name, param in model.named_parameters():
        if id(param) in teacher:
            assert param.grad is None, name
        elif param.requires_grad:
            assert param.grad is not None, f'{name} got no gradient'


PAPER_YFCC = sorted(p for p in LEAVES if '_yfcc15m' in osp.basename(p))
TEACHER_TEXT_SHARED = ['text_encoder.token_embedding', 'text_encoder.positional_embedding', 'text_encoder.ln_final']


@pytest.mark.parametrize('config', PAPER_YFCC, ids=osp.basename)
def test_yfcc15m_paper_configs_follow_their_reference(config):
    """SLIP's metadata with the reference's caption policy (Q-D14: DetailCLIP concatenates title and description, the
    SLIP family draws one), timm 0.5's cls_token init, and A-CLIP's/DetailCLIP's hybrid teacher text tower (Q-D13) in
    the reference configs only."""
    cfg = Config.fromfile(config)
    name = osp.basename(config)
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'Yfcc15mDataset' and dataset.layout == 'slip'
    assert dataset.caption_mode == ('concat' if name.startswith('detailclip') else 'random_title_or_desc')
    assert cfg.model.image_encoder.cls_token_init_std == 0.02
    reference_hybrid = name.startswith(('detailclip', 'aclip')) and not name.endswith('_clean.py')
    assert list((cfg.model.get('teacher') or {}).get('shared', [])) == (TEACHER_TEXT_SHARED if reference_hybrid else [])


@pytest.mark.parametrize('config', [p for p in LEAVES if 'synthetic-world' in p], ids=osp.basename)
def test_tiny_configs_keep_timms_cls_token_init_and_whole_teacher_copies(config):
    model = Config.fromfile(config).model
    assert 'cls_token_init_std' not in model.image_encoder
    assert not (model.get('teacher') or {}).get('shared')
