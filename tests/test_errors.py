"""Configuration mistakes fail early with messages that say what is wrong and how to fix it."""
import copy

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from detailclip.models.encoders import VisionTransformer
from detailclip.registry import DATASETS, MODELS

CONFIG = 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py'


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


def test_unknown_registry_type_names_it():
    with pytest.raises(KeyError, match='NoSuchEncoder'):
        MODELS.build(dict(type='NoSuchEncoder'))


def test_unknown_type_nested_in_config(cfg):
    model = copy.deepcopy(cfg.model)
    model.image_encoder.type = 'NoSuchEncoder'
    with pytest.raises(KeyError, match='NoSuchEncoder'):
        MODELS.build(model)
    model = copy.deepcopy(cfg.model)
    model.objectives.clip.loss.type = 'NoSuchLoss'
    with pytest.raises(KeyError, match='NoSuchLoss'):
        MODELS.build(model)


@pytest.mark.parametrize('img_size,patch_size', [(60, 8), (100, 16), ((64, 60), 8)])
def test_image_size_not_divisible_by_patch(img_size, patch_size):
    with pytest.raises(ValueError) as info:
        VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=32, depth=1, num_heads=2)
    message = str(info.value)
    assert str(patch_size) in message
    sizes = [img_size] if isinstance(img_size, int) else img_size
    assert any(str(s) in message for s in sizes if s % patch_size), message
    assert 'divisible' in message


def test_image_size_error_through_config(cfg):
    model = copy.deepcopy(cfg.model)
    model.image_encoder.img_size = 60  # patch 8
    with pytest.raises(ValueError, match=r'60.*8'):
        MODELS.build(model)


def test_divisible_sizes_build():
    vit = VisionTransformer(img_size=(64, 48), patch_size=16, embed_dim=32, depth=1, num_heads=2)
    assert vit.patch_embed.num_patches == 4 * 3


@pytest.mark.parametrize('which', ['train', 'zero_shot', 'retrieval'])
def test_missing_data_root_tells_how_to_generate(cfg, tmp_path, which):
    init_default_scope('detailclip')
    loaders = {'train': cfg.train_dataloader, 'zero_shot': cfg.val_dataloader[0], 'retrieval': cfg.val_dataloader[1]}
    dataset = copy.deepcopy(loaders[which].dataset)
    dataset.pop('auto_generate')  # auto-generation would create the world instead of failing
    root = tmp_path / 'missing_world'
    dataset.data_root = str(root)
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(dataset)
    message = str(info.value)
    assert 'tools/data/make_synthetic_world.py' in message
    assert str(root) in message and 'data_root' in message
    assert not root.exists()
