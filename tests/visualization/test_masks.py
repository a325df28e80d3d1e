"""Mask, attention and reconstruction panels of a tiny DetailCLIP; the training hook in a real Runner run; and
tools/visualization/show_masks.py on its checkpoint."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from detailclip.registry import MODELS
from detailclip.testing import ROOT, TINY_CLIP, shrink_model, tiny_config
from detailclip.visualization import PANELS, mask_panels, panel_grid

DETAILCLIP = osp.join(ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
BATCH, SIZE, PATCH = 3, 64, 8
ITERS = 3


def _model(config: str = DETAILCLIP):
    """The config's model made tiny (8 x 8 patch grid), initialised with seed 0, in training mode."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('detailclip'):
        model = MODELS.build(shrink_model(Config.fromfile(config).model.to_dict()))
    model.init_weights()
    return model.train()


def _inputs(model, images: torch.Tensor) -> dict:
    """The preprocessor's inputs for (B, 3, H, W) uint8 ``images`` given as both student views."""
    views = [list(images)] * 2
    return model.data_preprocessor(dict(inputs=dict(views=views)))['inputs']


@pytest.fixture(scope='module')
def detailclip():
    """A tiny DetailCLIP, a batch of random uint8 images, its preprocessed inputs and the masks it draws."""
    model = _model()
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    inputs = _inputs(model, images)
    model.eval()
    with torch.no_grad():
        masks = model.image_context(inputs)['masks']  # attention masks: deterministic given the teacher
    model.train()
    return model, images, inputs, masks[0]


def _per_patch(changed: np.ndarray) -> torch.Tensor:
    """(K, H, W, 3) bool -> (K, N) bool: whether any pixel of each patch is set."""
    k, h, w, _ = changed.shape
    cells = changed.any(-1).reshape(k, h // PATCH, PATCH, w // PATCH, PATCH).any(axis=(2, 4))
    return torch.from_numpy(cells.reshape(k, -1))


def test_panels_have_shapes_and_dtype_and_restore_train_mode(detailclip):
    model, images, inputs, _ = detailclip
    panels = mask_panels(model, inputs, num_images=2)
    assert tuple(panels) == PANELS
    for panel in panels.values():
        assert panel.shape == (2, SIZE, SIZE, 3) and panel.dtype == np.uint8
    assert model.training and model.teacher.training is False
    np.testing.assert_array_equal(panels['input'], images[:2].permute(0, 2, 3, 1).numpy())  # mean/std undone
    grid = panel_grid(panels, gap=2)
    assert grid.shape == (2 * SIZE + 2, 4 * SIZE + 3 * 2, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[SIZE + 2:, 3 * (SIZE + 2):], panels['reconstruction'][1])


def test_mask_panel_differs_from_input_exactly_on_removed_patches(detailclip):
    model, _, inputs, removed = detailclip
    panels = mask_panels(model, inputs, num_images=BATCH)
    assert 0 < int(removed.sum()) < removed.numel()
    assert torch.equal(_per_patch(panels['mask'] != panels['input']), removed)


def test_reconstruction_equals_input_on_visible_patches(detailclip):
    model, _, inputs, removed = detailclip
    panels = mask_panels(model, inputs, num_images=BATCH)
    changed = _per_patch(panels['reconstruction'] != panels['input'])
    assert not changed[~removed].any()
    assert changed[removed].all()  # the untrained prediction is not the input


def test_nothing_to_show_for_clip():
    model = _model(TINY_CLIP)
    images = torch.zeros(2, 3, SIZE, SIZE, dtype=torch.uint8)
    inputs = model.data_preprocessor(dict(inputs=dict(views=[list(images)])))['inputs']
    assert mask_panels(model, inputs) == {}


# ------------------------------------------------------------------------------------------- Runner and tool

def _run_config(world: str, work_dir: str, hook: bool) -> Config:
    """Tiny DetailCLIP with random masks (its ablation: the visualisation then draws from torch's RNG), no
    per-iteration reseeding (so a hook that consumed random numbers would change the next batch), no validation."""
    cfg = tiny_config(world, work_dir, DETAILCLIP, max_iters=ITERS, batch_size=4)
    cfg.model = shrink_model(cfg.model)
    cfg.model.objectives.mae.patch_size = cfg.model.image_encoder.patch_size
    cfg.model.masker = dict(type='RandomMask', ratio=0.5)
    cfg.default_hooks.pop('iteration_seed')
    cfg.default_hooks.pop('visualization')
    if hook:
        cfg.default_hooks.visualization = dict(type='PretrainVisualizationHook', interval=2, num_images=2)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    return cfg


def _train(cfg: Config) -> Runner:
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _losses(runner: Runner) -> dict:
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        return {r['iter']: {k: v for k, v in r.items() if 'loss' in k} for r in map(json.loads, f) if 'loss' in r}


@pytest.fixture(scope='module')
def runs(tiny_world, tmp_path_factory):
    """A tiny run with the hook and one without it, same seed; (config, runner) of each."""
    out = tmp_path_factory.mktemp('vis_runs')
    configs = {hook: _run_config(tiny_world, str(out / ('hook' if hook else 'plain')), hook) for hook in (True, False)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('WANDB_MODE', 'offline')
        return {hook: (cfg, _train(cfg)) for hook, cfg in configs.items()}


def test_hook_writes_pngs_and_leaves_training_unchanged(runs):
    (_, with_hook), (_, without) = runs[True], runs[False]
    saved = sorted(glob.glob(osp.join(with_hook.log_dir, 'vis_data', 'vis_image', '*.png')))
    assert [osp.basename(p) for p in saved] == ['masks_2.png', 'masks_3.png']  # every 2 iterations and the last
    image = np.asarray(Image.open(saved[0]))
    assert image.shape == (2 * 64 + 2, 4 * 64 + 3 * 2, 3)  # 2 samples x (input, attention, mask, reconstruction)
    assert not glob.glob(osp.join(without.log_dir, 'vis_data', 'vis_image', '*.png'))
    assert _losses(with_hook) == _losses(without) and len(_losses(without)) == ITERS


def test_show_masks_renders_an_image_from_a_checkpoint(runs, tiny_world, tmp_path, monkeypatch):
    """Into a work dir, not next to the image; tiles enlarged by nearest neighbour under a title strip; "random" shows
    the model as training starts."""
    from tools.visualization import show_masks
    cfg, runner = runs[True]
    cfg_file = str(tmp_path / 'tiny.json')
    cfg.dump(cfg_file)
    image = tmp_path / 'data' / 'photo.png'
    image.parent.mkdir()
    source = sorted(glob.glob(osp.join(tiny_world, 'pretrain', 'images', '*')))[0]
    Image.open(source).resize((80, 96)).save(image)  # not square, not the view size
    ckpt = osp.join(runner.work_dir, f'iter_{ITERS}.pth')
    monkeypatch.chdir(tmp_path)
    out = show_masks.main([cfg_file, ckpt, str(image)])
    assert out == osp.join('work_dirs', 'show_masks', 'tiny', f'photo_iter_{ITERS}.png')
    assert sorted(p.name for p in image.parent.iterdir()) == ['photo.png']
    picture = np.asarray(Image.open(out).convert('RGB'))
    strip, tile = 32, 4 * 64  # 16-pixel titles; 64-pixel views enlarged 4x to the default 256
    assert picture.shape == (strip + tile, 4 * tile + 3 * 2, 3)
    assert (picture[:strip] < 128).any() and (picture[:strip] == 255).mean() > 0.8  # black titles on white
    for c in range(4):
        cell = picture[strip:, c * (tile + 2):c * (tile + 2) + tile]
        assert (cell == cell[::4, ::4].repeat(4, axis=0).repeat(4, axis=1)).all()  # 4x4 blocks: nearest neighbour
    random = show_masks.main([cfg_file, 'random', str(image), '--tile-size', '1', '--out', 'random.png'])
    assert np.asarray(Image.open(random).convert('RGB')).shape == (16 + 64, 4 * 64 + 3 * 2, 3)  # 8-pixel titles
    with pytest.raises(FileNotFoundError, match='image file'):
        show_masks.main([cfg_file, ckpt, str(tmp_path / 'missing.png')])
