"""Convert a checkpoint of the public DetailCLIP reference code (arXiv 2409.06809) into this platform's format.

    python tools/model_converters/import_detailclip_reference.py CKPT OUT --config CONFIG [--cfg-options k=v ...]
                                                                  [--mae NAME] [--ibot NAME]

CKPT is the reference's training checkpoint ({epoch, state_dict with the DDP "module." prefix, optimizer, scaler,
best_acc, args}, docs/methods.md 7.6) or a bare reference state dict. The model is built from CONFIG (a DetailCLIP
config of the same dimensions), loaded strictly with the converted weights, and saved as {'state_dict', 'meta'}, which
``load_from`` and ``tools/test.py`` read with ``torch.load(weights_only=True)``.
"""
import argparse
from functools import partial

from detailclip.converters.model_import import import_from_args, import_parser
from detailclip.converters.model_import import load_checkpoint_file as load_reference_checkpoint  # noqa: F401
from detailclip.converters.reference import convert_reference_detailclip


def parse_args(argv=None) -> argparse.Namespace:
    parser = import_parser('Import a DetailCLIP reference checkpoint',
                           'reference checkpoint (e.g. the released checkpoint.pt)',
                           'DetailCLIP model config with the checkpoint\'s dimensions')
    parser.add_argument('--mae', default='mae', help='name of the MAE objective in the config')
    parser.add_argument('--ibot', default='ibot', help='name of the iBOT objective in the config')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    convert = partial(convert_reference_detailclip, mae=args.mae, ibot=args.ibot)
    return import_from_args(args, convert, 'detailclip-reference')


if __name__ == '__main__':
    main()
