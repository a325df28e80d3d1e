"""Render what a checkpoint does to any image: the input, the EMA teacher's CLS attention, the kept/removed token
mask and the MAE reconstruction (:func:`detailclip.visualization.mask_panels`, the images the training hook logs).

    python tools/visualization/show_masks.py CONFIG CKPT|random IMAGE [--out PNG] [--tile-size PIXELS] [--seed S]
                                             [--cfg-options k=v ...]

For every student and teacher view the config's training pipeline makes, the image's largest centred crop of that
view's aspect is resized to its size (all views show the same content, their crop boxes given alongside). CKPT
"random" shows the model as training starts (initialised under --seed; the teacher is a copy of the student). The PNG
holds one titled row ``input | teacher attention | kept / removed | reconstruction`` (those the method has), each
tile enlarged by nearest neighbour to about --tile-size pixels (a whole factor: every patch stays a sharp square).
It goes to ``work_dirs/show_masks/<config name>/<image name>_<checkpoint name or random>.png`` unless --out says.
"""
import argparse
import os
import os.path as osp
from typing import List, Tuple

import torch
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from detailclip.datasets.transforms import LoadImageRGB
from detailclip.datasets.transforms.views import build_view
from detailclip.engine.config import load_config, pipeline_views
from detailclip.registry import MODELS
from detailclip.visualization import mask_panels, titled_grid, upscale


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Render teacher attention, token mask and MAE reconstruction')
    parser.add_argument('config', help='training config file')
    parser.add_argument('checkpoint', help='checkpoint file, or "random" for the model as training starts')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', help='output PNG (default: work_dirs/show_masks/<config name>/<image name>_'
                        '<checkpoint name>.png)')
    parser.add_argument('--tile-size', type=int, default=256,
                        help='enlarge each tile by nearest neighbour to about this many pixels (1: model resolution)')
    parser.add_argument('--seed', type=int, default=0, help='seed of a random init and of random masks')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    """Write the panel image and return its path."""
    args = parse_args(argv)
    _check_files(args)
    cfg = load_config(args.config, args.cfg_options)
    sizes = _view_sizes(cfg)
    model = _model(cfg, args.checkpoint, args.seed)
    batch = model.data_preprocessor(pseudo_collate([_sample(args.image, *sizes)]))
    panels = mask_panels(model, batch['inputs'], num_images=1)
    if not panels:
        raise ValueError(f'{args.config} trains a model with nothing to show (no teacher attention, no token mask): '
                         'use a config with a masker or an EMA teacher that runs (e.g. DetailCLIP, A-CLIP, MAE)')
    factor = max(1, round(args.tile_size / max(panels['input'].shape[1:3])))
    out = args.out or _default_out(args.config, args.checkpoint, args.image)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    Image.fromarray(titled_grid(upscale(panels, factor))).save(out)
    print(f'wrote {out} (columns: {" | ".join(panels)}; tiles enlarged {factor}x)')
    return out


def _check_files(args: argparse.Namespace) -> None:
    """Raise FileNotFoundError naming the first of config, image and checkpoint (unless "random") that is missing."""
    files = dict(config=args.config, image=args.image)
    if args.checkpoint != 'random':
        files['checkpoint'] = args.checkpoint
    for what, path in files.items():
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file {path!r} does not exist: check the path')


def _model(cfg, checkpoint: str, seed: int):
    """The config's model on the GPU if there is one, with the checkpoint's weights or initialised under ``seed``
    (``checkpoint`` "random"); torch's RNG is seeded for the random masks either way."""
    init_default_scope(cfg.get('default_scope', 'detailclip'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint == 'random':
        model.init_weights()  # the student as training starts, copied into the EMA teacher
    else:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True, logger='silent')
    return model.to('cuda' if torch.cuda.is_available() else 'cpu')


def _default_out(config: str, checkpoint: str, image: str) -> str:
    """``work_dirs/show_masks/<config name>/<image name>_<checkpoint name or random>.png``."""
    def name(path: str) -> str:
        return osp.splitext(osp.basename(path))[0]
    return osp.join('work_dirs', 'show_masks', name(config), f'{name(image)}_{name(checkpoint)}.png')


def _view_sizes(cfg) -> Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]:
    """(H, W) of the student and teacher views of the config's training pipeline."""
    pipeline = ((cfg.get('train_dataloader') or {}).get('dataset') or {}).get('pipeline')
    sizes = pipeline_views(pipeline) if isinstance(pipeline, list) else None
    if sizes is None:
        raise ValueError('the config has no training pipeline making views (train_dataloader.dataset.pipeline): '
                         'use the training config of the checkpoint')
    return sizes


def _sample(path: str, student: List[Tuple[int, int]], teacher: List[Tuple[int, int]]) -> dict:
    """The image as one packed sample: every view (3, H, W) uint8 at its own size, and ``boxes`` (V + V_t, 4) their
    crops in source pixels (top, left, height, width)."""
    img = LoadImageRGB()(dict(img_path=path))['img']
    boxes = [_crop_box(img.size, size) for size in student + teacher]
    views = [_view(img, box, size) for box, size in zip(boxes, student + teacher)]
    inputs = dict(views=views[:len(student)], boxes=torch.tensor(boxes, dtype=torch.float32))
    if teacher:
        inputs['teacher_views'] = views[len(student):]
    return dict(inputs=inputs)


def _crop_box(image_size: Tuple[int, int], size: Tuple[int, int]) -> List[int]:
    """(top, left, height, width) of the largest centred crop of a (W, H) ``image_size`` with ``size``'s aspect."""
    width, height = image_size
    scale = max(size[0] / height, size[1] / width)
    crop_h, crop_w = min(height, round(size[0] / scale)), min(width, round(size[1] / scale))
    return [(height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w]


def _view(img: Image.Image, box: List[int], size: Tuple[int, int]) -> torch.Tensor:
    """(3, H, W) uint8: the ``box`` crop of ``img`` resized to ``size`` (bilinear, antialiased)."""
    crop = TF.resized_crop(img, *box, size=list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return build_view([])(crop)


if __name__ == '__main__':
    main()
