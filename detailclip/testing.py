"""Helpers for tests and quick experiments: a tiny synthetic world and tiny configs that train in seconds."""
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CLIP = osp.join(ROOT, 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py')


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


# Widths of the paper and tiny recipes -> test widths; every key below that holds one of them is shrunk, so heads
# chained through their widths (BYOL projector -> predictor) stay consistent.
_SHRINK_WIDTHS = {768: 32, 512: 32, 256: 32, 128: 32, 4096: 64, 2048: 64, 1024: 64, 8192: 64, 65536: 64}
_WIDTH_KEYS = ('embed_dim', 'width', 'in_dim', 'hidden_dim', 'out_dim', 'bottleneck_dim')


def shrink_model(cfg: dict) -> dict:
    """A copy of a model config with every tower and head made tiny (widths, depths and heads), for fast tests of
    the paper recipes. Patch sizes and image sizes are kept."""
    if isinstance(cfg, list):
        return [shrink_model(v) for v in cfg]
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for key, value in cfg.items():
        if key in _WIDTH_KEYS and value in _SHRINK_WIDTHS:
            value = _SHRINK_WIDTHS[value]
        elif key in ('num_heads', 'heads'):
            value = 2
        elif key in ('depth', 'layers'):
            value = 1
        out[key] = shrink_model(value)
    return type(cfg)(out)


# Each method family's tiny recipe and the views of its pipeline: 'crop' (global) or 'local' sized; A-CLIP adds a
# teacher view and boxes.
METHOD_CONFIGS = {
    'clip': 'clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py',
    'slip': 'slip/slip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'flip': 'flip/flip_vit-tiny-p8_1xb128-coslr-8e_synthetic-world.py',
    'maskclip': 'maskclip/maskclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'aclip': 'aclip/aclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'detailclip': 'detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'ibot': 'ibot/ibot_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'dino': 'dino/dino_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
    'mae': 'mae/mae_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py',
}
METHOD_VIEWS = dict(clip=['crop'], slip=['crop'] * 3, flip=['crop'], maskclip=['crop'] * 2, aclip=['crop'] * 2,
                    detailclip=['crop'] * 2, ibot=['crop', 'crop', 'local', 'local'],
                    dino=['crop', 'crop', 'local', 'local'], mae=['crop'])
# (top, left, height, width) of A-CLIP's two student crops and the enclosing teacher crop, in source pixels
ACLIP_BOXES = [[0., 0., 48., 48.], [24., 16., 56., 64.], [0., 0., 96., 96.]]


def build_method(family: str, dtype=None, **model_overrides):
    """A method family's tiny model, shrunk further (:func:`shrink_model`, no drop path), built with seed 0 in
    training mode (in ``dtype`` when given), and its config; ``model_overrides`` update the model config (a dict
    updates the entry's dict: ``masker=dict(ratio=0.75)``)."""
    import torch
    from mmengine.registry import init_default_scope

    from detailclip.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', METHOD_CONFIGS[family]))
    model_cfg = shrink_model(cfg.model.to_dict())
    model_cfg['image_encoder']['drop_path_rate'] = 0.0
    for key, value in model_overrides.items():
        model_cfg[key] = {**model_cfg[key], **value} if isinstance(value, dict) else value
    init_default_scope('detailclip')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    return (model if dtype is None else model.to(dtype)).train(), cfg


def method_batch(family: str, model, cfg: Config, batch_size: int, dtype=None, seed: int = 1) -> dict:
    """A preprocessed batch for ``model.forward(batch, None, mode='loss')``: random views of the family's layout,
    caption tokens ending in EOT for text methods, A-CLIP's teacher view and boxes."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    sizes = dict(crop=cfg.crop_size, local=cfg.get('local_size'))

    def images(kind: str) -> torch.Tensor:
        return torch.randn(batch_size, 3, sizes[kind], sizes[kind], generator=gen, dtype=dtype)

    batch = dict(views=[images(kind) for kind in METHOD_VIEWS[family]])
    if family == 'aclip':
        batch.update(teacher_views=[images('crop')],
                     boxes=torch.tensor(ACLIP_BOXES, dtype=dtype).expand(batch_size, -1, -1))
    if model.text_encoder is not None:
        vocab = model.text_encoder.token_embedding.num_embeddings
        text = torch.randint(1, vocab - 1, (batch_size, cfg.context_length), generator=gen)
        text[:, -1] = vocab - 1  # EOT: the highest id
        batch['text'] = text
    return batch


def use_tiny_world(dataset: dict, world: str) -> dict:
    """Point a training dataset config at a tiny synthetic world, keeping its type-specific layout and pipeline."""
    if dataset['type'] == 'Yfcc15mDataset':  # the world has no YFCC metadata: its caption CSV, in the same pipeline
        dataset = dict(type='CsvImageTextDataset', pipeline=dataset['pipeline'])
    dataset = dict(dataset, data_root=world)
    dataset.pop('auto_generate', None)
    if dataset['type'] == 'CsvImageTextDataset':
        dataset.update(ann_file='pretrain/train.csv', sep=',', data_prefix=dict(img_path='pretrain'))
    elif dataset['type'] == 'ImageFolderClassification':
        dataset.update(split='classification/train', zero_shot_file='zero_shot.json')
    return dataset


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _gloo_worker(rank: int, fn, world_size: int, port: int, out_dir: str) -> None:
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)  # forked: never re-enter the parent's OpenMP pool
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        torch.save(fn(rank), f'{out_dir}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def run_gloo(fn, world_size: int, out_dir: str) -> list:
    """Run ``fn(rank)`` in ``world_size`` forked processes joined in a gloo process group (real DDP on CPU) and
    return what each rank returned (tensors and containers of them). Fork, not spawn: a spawned child re-imports
    torch and the package, seconds per process on 2 cores."""
    import torch
    import torch.multiprocessing as mp
    mp.start_processes(_gloo_worker, args=(fn, world_size, free_port(), str(out_dir)), nprocs=world_size, join=True,
                       start_method='fork')
    return [torch.load(f'{out_dir}/rank{rank}.pt') for rank in range(world_size)]
