"""Export the image encoder of a training checkpoint for downstream tasks (docs/methods.md 9.3).

    python tools/model_converters/export_backbone.py CKPT OUT [--teacher] [--img-size H [W]] [--config CONFIG]

Writes OUT.pth ({"state_dict": timm-named ViT weights, "meta": {method, objectives, network, iter, epoch, encoder}})
and OUT.safetensors (the same tensors, the meta entries as JSON strings in the header). The weights are checked
strictly against an encoder rebuilt from the training config (the checkpoint's own, or --config). --img-size
resamples pos_embed bicubically to another input size (e.g. 512 for ADE20K).
"""
import argparse

import torch
from mmengine.config import Config

from detailclip.converters.export import export_backbone, save_backbone


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the image encoder of a training checkpoint')
    parser.add_argument('checkpoint', help='training checkpoint (MMEngine .pth, with or without a DDP prefix)')
    parser.add_argument('out', help='output stem: OUT.pth and OUT.safetensors are written')
    parser.add_argument('--teacher', action='store_true', help='export the EMA teacher\'s encoder, not the student\'s')
    parser.add_argument('--img-size', type=int, nargs='+', metavar='H [W]',
                        help='resize pos_embed to this input size (one value: square)')
    parser.add_argument('--config', help='training config, for checkpoints that do not carry theirs')
    args = parser.parse_args(argv)
    if args.img_size and len(args.img_size) > 2:
        parser.error('--img-size takes H or H W')
    return args


def main(argv=None) -> tuple:
    args = parse_args(argv)
    img_size = None if not args.img_size else (args.img_size[0] if len(args.img_size) == 1 else tuple(args.img_size))
    try:
        checkpoint = torch.load(args.checkpoint, map_location='cpu', weights_only=True)
        state_dict, meta = export_backbone(checkpoint, 'teacher' if args.teacher else 'student', img_size,
                                           Config.fromfile(args.config) if args.config else None)
    except (OSError, ValueError) as err:  # an unreadable checkpoint, or no such network (the message names the fix)
        raise SystemExit(f'export_backbone: {args.checkpoint}: {err}') from err
    paths = save_backbone(state_dict, meta, args.out)
    print(f'exported the {meta["network"]} encoder of {meta["method"]} (iter {meta["iter"]}, {len(state_dict)} '
          f'tensors): {paths[0]}, {paths[1]}')
    return paths


if __name__ == '__main__':
    main()
