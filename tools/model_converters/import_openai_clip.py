"""Convert OpenAI CLIP ViT weights (arXiv 2103.00020) into this platform's format.

    python tools/model_converters/import_openai_clip.py CKPT OUT [--config CONFIG] [--cfg-options k=v ...]

CKPT is OpenAI's TorchScript archive (e.g. ``ViT-B-16.pt`` as ``clip.load`` downloads it) or a plain state dict with
OpenAI's names (open_clip's ``state_dict()``, or an open_clip training checkpoint with ``state_dict``). CONFIG defaults
to configs/clip/clip_vit-base-p16_openai.py (ViT-B/16 with OpenAI's pre-norm, QuickGELU and LayerNorm eps). The output
is {'state_dict', 'meta'}; evaluate it with ``python tools/test.py CONFIG OUT``.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from detailclip.converters.model_import import import_checkpoint
from detailclip.converters.openai_import import convert_openai_clip

DEFAULT_CONFIG = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'configs/clip/clip_vit-base-p16_openai.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Import OpenAI CLIP ViT weights')
    parser.add_argument('checkpoint', help='OpenAI TorchScript archive or open_clip-style state dict')
    parser.add_argument('out', help='where the converted checkpoint is written')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='CLIP config with the checkpoint\'s dimensions')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    import_checkpoint(args.checkpoint, args.out, args.config, convert_openai_clip, 'openai-clip', args.cfg_options)
    return args.out


if __name__ == '__main__':
    main()
