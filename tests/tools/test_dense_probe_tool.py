"""tools/dense_probe.py end to end on a small generated world: random init, an exported backbone and a training
checkpoint of the same weights, and its one-line errors."""
import json
import math

import pytest
import torch
from mmengine.config import Config

from detailclip.datasets.synthetic_world import generate_world
from detailclip.converters.export import build_encoder, encoder_kwargs, save_backbone
from tools.dense_probe import main

pytest.importorskip('pycocotools')

CONFIG = 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py'
METRICS = ('probe/seg_mIoU', 'probe/seg_mIoU_small', 'probe/box_AP', 'probe/box_AP50', 'probe/box_AP_small',
           'probe/object_top1', 'probe/object_top1_small', 'probe/image_top1')
OTHER_KEYS = ('probe/seg_lambda', 'probe/box_cls_lambda', 'probe/box_reg_lambda', 'probe/object_lambda',
              'probe/image_lambda', 'probe/feature_dim')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """96-pixel dense and classification splits (the 64-pixel tiny encoder's pos_embed is resized to a 12x12 grid),
    nothing else."""
    out = tmp_path_factory.mktemp('dense') / 'world'
    return str(generate_world(out, image_size=96, num_train=0, num_retrieval=0, num_cls_train_per_class=2,
                              num_cls_val_per_class=1, num_seg_train=12, num_seg_val=6, num_det_train=12,
                              num_det_val=6, progress=False))


@pytest.fixture(scope='module')
def random_run(world, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('random')
    result = main(['random', '--config', CONFIG, '--seed', '3', '--data-root', world, '--work-dir', str(work_dir)])
    return result, json.loads((work_dir / 'metrics.json').read_text())


def test_random_init_writes_every_metric(random_run):
    result, written = random_run
    assert written == result
    for key in METRICS:
        assert math.isfinite(written[key]) and 0 <= written[key] <= 100, key
    for key in OTHER_KEYS:
        assert key in written
    assert written['probe/feature_dim'] == 4 * 128


def _seed_3_encoder():
    kwargs = encoder_kwargs(Config.fromfile(CONFIG).model.image_encoder)
    torch.manual_seed(3)
    return build_encoder(kwargs).state_dict(), kwargs


def test_exported_backbone_and_training_checkpoint_give_the_random_runs_numbers(world, random_run, tmp_path):
    state_dict, kwargs = _seed_3_encoder()
    exported = save_backbone(state_dict, {'encoder': kwargs}, str(tmp_path / 'backbone'))[1]  # .safetensors
    training = str(tmp_path / 'iter_1.pth')
    torch.save({'state_dict': {f'image_encoder.{k}': v for k, v in state_dict.items()},
                'meta': {'cfg': Config.fromfile(CONFIG).pretty_text, 'iter': 1}}, training)
    for checkpoint in (exported, training):
        result = main([checkpoint, '--data-root', world, '--work-dir', str(tmp_path / 'out')])
        assert {k: result[k] for k in METRICS} == pytest.approx({k: random_run[0][k] for k in METRICS}), checkpoint


def test_errors_are_one_line(world, tmp_path):
    with pytest.raises(SystemExit, match='needs --config'):
        main(['random', '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='--probe-images and --like go together'):
        main(['random', '--config', CONFIG, '--probe-images', '10', '--work-dir', str(tmp_path)])
    not_a_world = tmp_path / 'not_a_world'
    not_a_world.mkdir()
    (not_a_world / 'notes.txt').write_text('not generated here')
    with pytest.raises(SystemExit, match='no usable synthetic world'):
        main(['random', '--config', CONFIG, '--data-root', str(not_a_world), '--work-dir', str(tmp_path)])
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(SystemExit, match='unknown checkpoint format'):
        main([str(garbage), '--data-root', world, '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='not found'):
        main([str(tmp_path / 'missing.pth'), '--data-root', world, '--work-dir', str(tmp_path)])
