"""Convert a checkpoint of SLIP's repository (arXiv 2112.12750; its CLIP and SLIP models) into this platform's format.

    python tools/model_converters/import_slip.py CKPT OUT --config CONFIG [--cfg-options k=v ...] [--simclr NAME]

CKPT is SLIP's released checkpoint ({epoch, state_dict with the DDP "module." prefix, optimizer, scaler, best_acc1,
args}) or a bare state dict. CONFIG is a model config of the same dimensions: a SLIP config for SLIP models (the SimCLR
MLP goes to its ``simclr`` objective's head), a CLIP config for SLIP's CLIP baselines; e.g. for the released ViT-B/16
SLIP: configs/slip/slip_vit-base-p16_8xb512-amp-coslr-25e_yfcc15m.py. The output is {'state_dict', 'meta'}, read by
``load_from`` and ``tools/test.py`` with ``torch.load(weights_only=True)``.
"""
import argparse
from functools import partial

from detailclip.converters.model_import import import_from_args, import_parser
from detailclip.converters.reference import convert_reference_slip


def parse_args(argv=None) -> argparse.Namespace:
    parser = import_parser('Import a SLIP-repository (CLIP or SLIP) checkpoint',
                           'SLIP checkpoint (e.g. slip_base_25ep.pt)',
                           'SLIP or CLIP config with the checkpoint\'s dimensions')
    parser.add_argument('--simclr', default='simclr', help='name of the SimCLR objective in the config')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    return import_from_args(args, partial(convert_reference_slip, simclr=args.simclr), 'slip')


if __name__ == '__main__':
    main()
