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

from mmengine.config import DictAction

from detailclip.converters.model_import import import_checkpoint
from detailclip.converters.reference import convert_reference_slip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Import a SLIP-repository (CLIP or SLIP) checkpoint')
    parser.add_argument('checkpoint', help='SLIP checkpoint (e.g. slip_base_25ep.pt)')
    parser.add_argument('out', help='where the converted checkpoint is written')
    parser.add_argument('--config', required=True, help='SLIP or CLIP config with the checkpoint\'s dimensions')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    parser.add_argument('--simclr', default='simclr', help='name of the SimCLR objective in the config')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    convert = partial(convert_reference_slip, simclr=args.simclr)
    import_checkpoint(args.checkpoint, args.out, args.config, convert, 'slip', args.cfg_options)
    return args.out


if __name__ == '__main__':
    main()
