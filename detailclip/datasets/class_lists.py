"""Zero-shot class lists shipped with the package (``zero_shot_lists/*.json``, setup.cfg package_data)."""
import json
import os
import os.path as osp

ZERO_SHOT_LISTS = osp.join(osp.dirname(osp.abspath(__file__)), 'zero_shot_lists')


def zero_shot_preset(name: str) -> dict:
    """A shipped zero-shot list: ``classes`` (names or synonym lists, label order), ``templates``, and ``folders``
    (the image-folder name of each class), e.g. ``'imagenet1k'`` (CLIP's 1000 names, the 7 templates of
    docs/methods.md, zero-shot evaluation)."""
    path = osp.join(ZERO_SHOT_LISTS, f'{name}.json')
    if not osp.isfile(path):
        known = sorted(osp.splitext(f)[0] for f in os.listdir(ZERO_SHOT_LISTS) if f.endswith('.json'))
        raise FileNotFoundError(f'no shipped zero-shot list {name!r}: use one of {known}, or zero_shot_file for your '
                                'own JSON')
    with open(path) as f:
        return json.load(f)
