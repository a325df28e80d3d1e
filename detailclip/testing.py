"""Helpers for tests and quick experiments: a tiny synthetic world and tiny configs that train in seconds."""
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CLIP = osp.join(ROOT, 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-8e_synthetic-world.py')


def make_tiny_world(out: str) -> str:
    """A small synthetic world (real formats, 64-pixel images) in ``out``."""
    from detailclip.datasets.synthetic_world import generate_world
    return str(generate_world(out, seed=0, image_size=64, num_train=96, num_retrieval=16, num_cls_train_per_class=2,
                              num_cls_val_per_class=4, num_seg_train=2, num_seg_val=2, num_det_train=2,
                              num_det_val=2, progress=False))


def tiny_config(world: str, work_dir: str, config: str = TINY_CLIP, max_iters: int = 4, batch_size: int = 8) -> Config:
    """``config`` shrunk further (32-wide, 2 layers, 4x4 grid), on ``world``, with single-process data loading and
    logging every iteration without smoothing, so a run takes seconds."""
    cfg = Config.fromfile(config)
    cfg.model.image_encoder.update(patch_size=16, embed_dim=32, depth=2, num_heads=2)
    if cfg.model.get('text_encoder'):
        cfg.model.text_encoder.update(width=32, layers=1, heads=2)
        cfg.model.embed_dim = 32
    for loader in [cfg.train_dataloader, *cfg.val_dataloader]:
        loader.update(num_workers=0, persistent_workers=False, batch_size=batch_size)
        loader.dataset.data_root = world
        loader.dataset.pop('auto_generate', None)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=10**9)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.log_processor.window_size = 1
    cfg.work_dir = work_dir
    return cfg
