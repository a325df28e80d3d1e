"""COCO detection configs (docs/methods.md 9.4) and the downstream entry, on the tiny synthetic world."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from detailclip.datasets.synthetic_world import SHAPES
from detailclip.testing import ROOT, TINY_CLIP, tiny_config

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'downstream', 'detection', 'configs', '*.py')))
PAPER = [c for c in CONFIGS if c.endswith('_coco.py')]
TINY = [c for c in CONFIGS if 'synthetic-world' in c]
CONTROLS = sorted(glob.glob(osp.join(ROOT, 'downstream', 'detection', 'configs', 'controls', '*.py')))
RPN_LOSSES = {'loss_rpn_cls', 'loss_rpn_bbox'}
RCNN_LOSSES = {'loss_cls', 'loss_bbox', 'loss_mask'}


def _load(config: str) -> Config:
    cfg = Config.fromfile(config)  # imports downstream and detailclip.engine
    init_default_scope(cfg.default_scope)
    return cfg


def _is_cascade(cfg: Config) -> bool:
    return cfg.model.type == 'CascadeRCNN'


def _expected_losses(cfg: Config) -> set:
    if _is_cascade(cfg):
        return RPN_LOSSES | {f's{i}.{k}' for i in range(3) for k in RCNN_LOSSES}
    return RPN_LOSSES | RCNN_LOSSES


def test_config_lists():
    assert len(PAPER) == 3 and len(TINY) == 3 and len(CONTROLS) == 1


@pytest.mark.parametrize('config', PAPER, ids=osp.basename)
def test_paper_recipes(config):
    cfg = _load(config)
    backbone, wrapper = cfg.model.backbone, cfg.optim_wrapper
    assert backbone.type == 'ViTBackbone' and backbone.fpn_adapter and not backbone.out_with_norm
    assert backbone.out_indices == (3, 5, 7, 11) and backbone.drop_path_rate == 0.2
    assert backbone.norm_cfg.type == 'SyncBN' and backbone.embed_dim == 768
    assert cfg.model.neck.in_channels == [768] * 4 and cfg.model.neck.out_channels == 256
    assert wrapper.type == 'AmpOptimWrapper' and 'fp16' not in cfg
    assert wrapper.constructor == 'detailclip.LayerDecayOptimWrapperConstructor'
    optimizer = wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert optimizer.betas == (0.9, 0.999)
    three_x = '-3x_' in config
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.end, steps.type) == ('LinearLR', 500, 'MultiStepLR')
    assert steps.milestones == ([27, 33] if three_x else [8, 11])
    assert cfg.train_cfg.max_epochs == steps.end == (36 if three_x else 12)
    assert wrapper.paramwise_cfg.layer_decay_rate == (0.65 if three_x else 0.75)  # Q-I2: config 3x vs README 1x
    assert cfg.train_dataloader.batch_size == 2 and cfg.val_evaluator.metric == ['bbox', 'segm']
    assert [t.type for t in cfg.train_pipeline].count('RandomChoice') == 1  # DETR-style multi-scale + crop
    if _is_cascade(cfg):
        heads = cfg.model.roi_head.bbox_head
        assert len(heads) == 3 and all(h.type == 'ConvFCBBoxHead' and (h.num_shared_convs, h.num_shared_fcs) == (4, 1)
                                       for h in heads)
        assert all(h.loss_bbox == dict(type='GIoULoss', loss_weight=10.0) and h.reg_decoded_bbox for h in heads)
        assert all(h.norm_cfg.type == 'SyncBN' for h in heads)
    else:
        assert cfg.model.type == 'MaskRCNN'


@pytest.mark.parametrize('config', PAPER, ids=osp.basename)
def test_paper_models_build_shrunk(config):
    """The paper models build (backbone made 32 wide; SyncBN needs a process group only in forward), and the
    layer-decay constructor scales the lrs by block: x rate for block 11, x rate^13 for the embeddings, x1 for the
    FPN adapter, neck and heads."""
    from mmdet.registry import MODELS
    cfg = _load(config)
    cfg.model.backbone.update(embed_dim=32, num_heads=2)
    cfg.model.neck.in_channels = [32] * 4
    model = MODELS.build(cfg.model)
    assert model.backbone.encoder.grid_size == (42, 68)
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    wrapper = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))  # AMP needs a GPU
    scale = {id(p): group['lr_scale'] for group in wrapper.optimizer.param_groups for p in group['params']}
    named = dict(model.named_parameters())
    assert scale[id(named['backbone.encoder.blocks.11.attn.qkv.weight'])] == pytest.approx(rate)
    assert scale[id(named['backbone.encoder.pos_embed'])] == pytest.approx(rate ** 13)
    assert scale[id(named['backbone.fpn.0.0.weight'])] == scale[id(named['neck.fpn_convs.0.conv.weight'])] == 1
    # every trainable backbone parameter reaches the FPN (one that does not stops DDP); eval mode, since SyncBN
    # normalises with batch statistics only in a process group
    model.eval()
    sum(level.sum() for level in model.neck(model.backbone(torch.randn(2, 3, 64, 96)))).backward()
    unused = [n for n, p in model.backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, f'trainable but unused in forward: {unused}'


def test_paper_train_pipeline(tiny_world):
    """The DETR-style augmentation of the paper recipes on tiny-world images: either branch ends in a multi-scale
    resize (short side 480-800 in steps of 32), and the boxes stay inside the image."""
    from mmdet.registry import DATASETS
    paper, tiny = _load(PAPER[0]), _load(TINY[0])
    dataset = DATASETS.build(dict(tiny.train_dataloader.dataset, data_root=osp.join(tiny_world, 'coco'),
                                  pipeline=paper.train_pipeline))
    for seed in range(4):
        torch.manual_seed(seed)
        sample = dataset[seed % len(dataset)]['data_samples']
        assert min(sample.img_shape) in range(480, 801, 32)
        boxes = sample.gt_instances.bboxes.tensor
        assert (boxes >= 0).all() and (boxes[:, 2] <= sample.img_shape[1]).all()
        assert (boxes[:, 3] <= sample.img_shape[0]).all()


def test_tiny_world_dataset(tiny_world):
    """The synthetic world's COCO split through mmdet's CocoDataset: its categories (ids from 1) map onto the
    config's classes in order, boxes and masks load for every instance."""
    from mmdet.registry import DATASETS
    from pycocotools.coco import COCO
    cfg = _load(TINY[0])
    root = osp.join(tiny_world, 'coco')
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=root))
    assert dataset.metainfo['classes'] == SHAPES and len(dataset) > 0
    coco = COCO(osp.join(root, 'annotations', 'instances_train2017.json'))
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        names = [coco.cats[a['category_id']]['name'] for a in coco.imgToAnns[sample.img_id]]
        labels = sample.gt_instances.labels.tolist()
        assert sorted(SHAPES[k] for k in labels) == sorted(names)
        assert len(sample.gt_instances.masks) == len(sample.gt_instances.bboxes) == len(labels)


def _train_step(config: str, world: str):
    """One loss, backward and fp32 optimizer step of ``config`` on two tiny-world samples; checks that the loss is
    finite, every stage's losses are present and every trainable parameter gets a gradient (a parameter without one
    would stop DDP). Returns the config and the optim wrapper."""
    from mmdet.registry import DATASETS, MODELS
    cfg = _load(config)
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=osp.join(world, 'coco')))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = model.data_preprocessor(pseudo_collate([dataset[i % len(dataset)] for i in range(2)]), True)
    losses = model(**data, mode='loss')
    assert _expected_losses(cfg) <= set(losses)
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    wrapper.backward(loss)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None for p in trainable.values()), [n for n, p in trainable.items() if p.grad is None]
    wrapper.step()
    return cfg, wrapper


@pytest.mark.parametrize('config', TINY, ids=osp.basename)
def test_tiny_models_train_step(config, tiny_world):
    """A training step of each tiny ViT config, with layer decay over the encoder's depth + 2 groups."""
    cfg, wrapper = _train_step(config, tiny_world)
    rate, num_layers = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate, cfg.model.backbone.depth + 2
    assert {g['lr_scale'] for g in wrapper.optimizer.param_groups} == {rate ** k for k in range(num_layers)}


@pytest.mark.parametrize('config', CONTROLS, ids=osp.basename)
def test_control_train_step(config, tiny_world):
    """The CNN controls (the tiny detector on another backbone) train, and the downstream entry runs them from
    random init only: a pretrained checkpoint is refused by name."""
    from tools.downstream import build_config, parse_args
    cfg, _ = _train_step(config, tiny_world)
    assert cfg.model.backbone.type != 'ViTBackbone'
    with pytest.raises(ValueError, match='ViTBackbone only.*"random"'):
        build_config(parse_args([config, 'work_dirs/clip/iter_552.pth']))


def _tiny_options(world: str) -> list:
    """--cfg-options that point a tiny config at the test world and shrink it to the test pretrainer (32 wide,
    patch 16, 4 blocks) and two iterations (one per epoch: the test world has two training images)."""
    coco = osp.join(world, 'coco')
    opts = [f'world_root={world}', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
            'default_hooks.logger.interval=1', 'model.backbone.patch_size=16', 'model.backbone.embed_dim=32',
            'model.backbone.num_heads=2', 'model.neck.in_channels=[32,32,32,32]']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={coco}', f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    ann_file = osp.join(coco, 'annotations', 'instances_val2017.json')
    return opts + [f'val_evaluator.ann_file={ann_file}', f'test_evaluator.ann_file={ann_file}']


@pytest.mark.slow
def test_pretrain_export_and_detect(tiny_world, tmp_path):
    """Pretrain a tiny CLIP two iterations, then tools/downstream.py exports its encoder, trains the tiny Mask R-CNN
    two iterations on the tiny world, and reports bbox and segm AP (CocoMetric through pycocotools, under numpy 2)
    with visualisations of boxes and masks."""
    from tools import downstream
    cfg = tiny_config(tiny_world, str(tmp_path / 'pretrain'), TINY_CLIP, max_iters=2)
    cfg.model.image_encoder.depth = 4
    Runner.from_cfg(cfg).train()
    checkpoint = str(tmp_path / 'pretrain' / 'iter_2.pth')
    config = next(c for c in TINY if 'mask-rcnn_fpn_1xb4-ms-1x' in c and 'cascade' not in c)
    work_dir = tmp_path / 'det'
    result = downstream.main([config, checkpoint, '--work-dir', str(work_dir), '--num-vis', '2',
                              '--cfg-options', *_tiny_options(tiny_world)])
    with open(work_dir / 'metrics.json') as f:
        assert json.load(f) == result
    metrics = result['metrics']
    assert 0 <= metrics['coco/bbox_mAP'] <= 1 and 0 <= metrics['coco/segm_mAP'] <= 1 and result['iters'] == 2
    assert not result['no_detections'] or not any(metrics.values())  # AP 0 when nothing was detected
    assert result['backbone_meta'] == dict(method='clip', network='student', iter=2, epoch=0)
    assert result['backbone'] == str(work_dir / 'backbone.pth') and (work_dir / 'backbone.safetensors').exists()
    assert len(result['visualisations']) == 2 and all(osp.getsize(p) > 0 for p in result['visualisations'])


def test_no_detections_score_zero_ap():
    """mmdet's CocoMetric returns no metric when nothing was detected; metrics.json then has AP 0, flagged."""
    from tools.downstream import no_detection_metrics
    metrics = no_detection_metrics(dict(type='CocoMetric', metric=['bbox', 'segm']))
    assert metrics['coco/bbox_mAP'] == metrics['coco/segm_mAP_50'] == 0.0 and len(metrics) == 12
    assert list(no_detection_metrics(dict(type='CocoMetric'))) == [
        f'coco/bbox_mAP{s}' for s in ('', '_50', '_75', '_s', '_m', '_l')]
    assert no_detection_metrics(dict(type='IoUMetric')) == {}


def test_default_work_dir():
    """Without --work-dir, and without one in the config, a run goes to work_dirs/<seg|det>/<config name>/<checkpoint
    folder>_<name> (or random)."""
    from tools.downstream import default_work_dir
    seg = glob.glob(osp.join(ROOT, 'downstream', 'segmentation', 'configs', '*linear*synthetic-world*.py'))[0]
    assert default_work_dir(Config.fromfile(TINY[0]), 'work_dirs/clip/iter_552.pth') == osp.join(
        'work_dirs', 'det', osp.splitext(osp.basename(TINY[0]))[0], 'clip_iter_552')
    assert default_work_dir(Config.fromfile(seg), 'random') == osp.join(
        'work_dirs', 'seg', osp.splitext(osp.basename(seg))[0], 'random')
