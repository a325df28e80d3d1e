"""ADE20K segmentation configs (docs/methods.md 9.4) and the downstream entry, on the tiny synthetic world."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from detailclip.datasets.synthetic_world import SHAPES
from detailclip.testing import ROOT, TINY_CLIP, tiny_config

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'downstream', 'segmentation', 'configs', '*.py')))
PAPER = [c for c in CONFIGS if 'ade20k-512x512' in c]
TINY = [c for c in CONFIGS if 'synthetic-world' in c]


def _load(config: str) -> Config:
    cfg = Config.fromfile(config)  # imports downstream, downstream.segmentation, detailclip.engine
    init_default_scope(cfg.default_scope)
    return cfg


def _is_upernet(cfg: Config) -> bool:
    return cfg.model.decode_head.type == 'UPerHead'


def test_config_lists():
    assert len(PAPER) == 2 and len(TINY) == 2


@pytest.mark.parametrize('config', PAPER, ids=osp.basename)
def test_paper_recipes(config):
    cfg = _load(config)
    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert backbone.type == 'ViTBackbone' and backbone.out_indices == (3, 5, 7, 11) and backbone.out_with_norm
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and 'fp16' not in cfg
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.train_cfg.max_iters == 160000 and head.num_classes == 150
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.power, poly.eta_min) == ('LinearLR', 1500, 'PolyLR', 1.0, 0.)
    if _is_upernet(cfg):
        assert cfg.optim_wrapper.optimizer.lr == 8e-5 and cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
        assert backbone.fpn_adapter and backbone.drop_path_rate == 0.1 and backbone.norm_cfg.type == 'SyncBN'
        assert head.channels == 768 and head.pool_scales == (1, 2, 3, 6)
        aux = cfg.model.auxiliary_head
        assert (aux.type, aux.in_index, aux.loss_decode.loss_weight) == ('FCNHead', 2, 0.4)
        assert cfg.train_dataloader.batch_size == 2
    else:
        assert cfg.optim_wrapper.optimizer.lr == 8e-4 and backbone.frozen_stages == 12 and not backbone.fpn_adapter
        assert head.type == 'FCNHead' and head.num_convs == 0 and head.input_transform == 'resize_concat'
        assert head.channels == 4 * 768 and head.dropout_ratio == 0  # iBOT's linear config: no dropout
        assert cfg.train_dataloader.batch_size == 4


@pytest.mark.parametrize('config', PAPER, ids=osp.basename)
def test_paper_models_build_shrunk(config):
    """The paper models build (backbone made 32 wide; SyncBN needs a process group only in forward)."""
    from mmseg.registry import MODELS
    cfg = _load(config)
    cfg.model.backbone.update(embed_dim=32, num_heads=2)
    cfg.model.decode_head.update(in_channels=[32] * 4, channels=32 if _is_upernet(cfg) else 128)
    if cfg.model.get('auxiliary_head'):
        cfg.model.auxiliary_head.update(in_channels=32, channels=16)
    model = MODELS.build(cfg.model)
    assert model.backbone.encoder.grid_size == (32, 32)


def test_tiny_world_dataset(tiny_world):
    from mmseg.registry import DATASETS
    cfg = _load(TINY[0])
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=osp.join(tiny_world, 'ade')))
    assert dataset.metainfo['classes'] == SHAPES and len(dataset.metainfo['palette']) == len(SHAPES)
    labels = torch.cat([dataset[i]['data_samples'].gt_sem_seg.data.unique() for i in range(len(dataset))])
    assert set(labels.tolist()) <= set(range(len(SHAPES))) | {255} and (labels < len(SHAPES)).any()


@pytest.mark.parametrize('config', TINY, ids=osp.basename)
def test_tiny_models_train_step(config, tiny_world):
    """Loss on two tiny-world samples: finite, every head's loss present, every trainable parameter gets a gradient
    (only the classifier for the linear probe)."""
    from mmseg.registry import DATASETS, MODELS
    cfg = _load(config)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=osp.join(tiny_world, 'ade')))
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    losses = model(**data, mode='loss')
    expected = {'decode.loss_ce', 'aux.loss_ce'} if _is_upernet(cfg) else {'decode.loss_ce'}
    assert expected <= set(losses) and all(torch.isfinite(losses[k]) for k in expected)
    sum(losses[k] for k in expected).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None for p in trainable.values()), [n for n, p in trainable.items() if p.grad is None]
    if not _is_upernet(cfg):
        assert set(trainable) == {'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'}


def _tiny_options(world: str, config: str) -> list:
    """--cfg-options that point a tiny config at the test world and shrink it to the test pretrainer (32 wide,
    patch 16, 4 blocks) and two iterations."""
    opts = [f'world_root={world}', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.logger.interval=1',
            'model.backbone.patch_size=16', 'model.backbone.embed_dim=32', 'model.backbone.num_heads=2',
            'model.decode_head.in_channels=[32,32,32,32]']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={world}/ade', f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    if 'upernet' in config:
        return opts + ['model.decode_head.channels=16', 'model.auxiliary_head.in_channels=32',
                       'model.auxiliary_head.channels=8']
    return opts + ['model.decode_head.channels=128']


@pytest.mark.slow
def test_pretrain_export_and_segment(tiny_world, tmp_path):
    """Pretrain a tiny CLIP two iterations, then tools/downstream.py exports its encoder, trains the linear probe and
    UperNet two iterations each on the tiny world, and reports mIoU (mmseg's IoUMetric) with visualisations."""
    from tools import downstream
    cfg = tiny_config(tiny_world, str(tmp_path / 'pretrain'), TINY_CLIP, max_iters=2)
    cfg.model.image_encoder.depth = 4
    Runner.from_cfg(cfg).train()
    checkpoint = str(tmp_path / 'pretrain' / 'iter_2.pth')
    for config in TINY:
        work_dir = tmp_path / osp.basename(config)
        result = downstream.main([config, checkpoint, '--work-dir', str(work_dir), '--num-vis', '2',
                                  '--cfg-options', *_tiny_options(tiny_world, config)])
        with open(work_dir / 'metrics.json') as f:
            assert json.load(f) == result
        assert 0 <= result['metrics']['mIoU'] <= 100 and result['iters'] == 2
        assert result['backbone_meta'] == dict(method='clip', network='student', iter=2, epoch=0)
        assert (work_dir / 'backbone.pth').exists() and (work_dir / 'backbone.safetensors').exists()
        assert len(result['visualisations']) == 2 and all(osp.getsize(p) > 0 for p in result['visualisations'])
