"""Convert OpenAI CLIP ViT weights (arXiv 2103.00020) into this platform's format.

    python tools/model_converters/import_openai_clip.py CKPT OUT [--config CONFIG] [--cfg-options k=v ...]

CKPT is OpenAI's TorchScript archive (e.g. ``ViT-B-16.pt`` as ``clip.load`` downloads it) or a plain state dict with
OpenAI's names (open_clip's ``state_dict()``, or an open_clip training checkpoint with ``state_dict``). CONFIG defaults
to configs/clip/clip_vit-base-p16_openai.py (ViT-B/16 with OpenAI's pre-norm, QuickGELU and LayerNorm eps). The output
is {'state_dict', 'meta'}; evaluate it with ``python tools/test.py CONFIG OUT``.
"""
import argparse
import os.path as osp

from detailclip.converters.model_import import import_from_args, import_parser
from detailclip.converters.openai_import import convert_openai_clip

DEFAULT_CONFIG = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'configs/clip/clip_vit-base-p16_openai.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = import_parser('Import OpenAI CLIP ViT weights', 'OpenAI TorchScript archive or open_clip-style state dict',
                           'CLIP config with the checkpoint\'s dimensions', default_config=DEFAULT_CONFIG)
    return parser.parse_args(argv)


def main(argv=None) -> str:
    return import_from_args(parse_args(argv), convert_openai_clip, 'openai-clip')


if __name__ == '__main__':
    main()
