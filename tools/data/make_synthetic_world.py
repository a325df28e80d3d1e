"""Generate the synthetic world (detailclip.datasets.synthetic_world) into a folder.

    python tools/data/make_synthetic_world.py --out data/synthetic_world [--seed S] [--image-size 128] \
        [--num-train 6000] [--num-det-train 300] [--overwrite] ...

The synthetic-world configs generate it on first use; this entry makes one with other sizes or a seed (e.g. a larger
detection split, then point a downstream config's data roots at it with --cfg-options).
"""
import argparse
import inspect
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, ROOT)

from detailclip.datasets.synthetic_world import generate_world  # noqa: E402

SIZE_ARGS = ('image_size', 'num_train', 'num_retrieval', 'num_cls_train_per_class', 'num_cls_val_per_class',
             'num_seg_train', 'num_seg_val', 'num_det_train', 'num_det_val')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    defaults = inspect.signature(generate_world).parameters
    parser = argparse.ArgumentParser(description='Generate the synthetic world (byte-identical for a seed).')
    parser.add_argument('--out', required=True, help='destination folder (must not exist unless --overwrite)')
    parser.add_argument('--seed', type=int, default=defaults['seed'].default)
    for name in SIZE_ARGS:
        parser.add_argument(f'--{name.replace("_", "-")}', type=int, default=defaults[name].default,
                            help=f'default {defaults[name].default}')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing folder')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    sizes = {name: getattr(args, name) for name in SIZE_ARGS}
    out = generate_world(args.out, seed=args.seed, progress=not args.no_progress, overwrite=args.overwrite, **sizes)
    print(f'synthetic world written to {out}')
    return str(out)


if __name__ == '__main__':
    main()
