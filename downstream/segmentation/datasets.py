"""The synthetic world's ``ade/`` split as an mmseg data set."""
from mmseg.datasets import ADE20KDataset
from mmseg.registry import DATASETS

from detailclip.datasets.synthetic_world import SHAPES

# One colour per shape for the prediction overlays (ADE20K-like, distinct from each other).
_PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
            [70, 240, 240], [240, 50, 230]]


@DATASETS.register_module()
class SyntheticWorldADE20KDataset(ADE20KDataset):
    """mmseg's ``ADE20KDataset`` (images/annotations layout, ``.jpg``/``.png``, ``reduce_zero_label=True``) with the
    synthetic world's shape classes.

    Passing ``metainfo=dict(classes=SHAPES)`` to ``ADE20KDataset`` itself fails: mmseg maps new classes onto the 150
    ADE20K names and raises unless they are a subset of them. The label PNGs hold 0 for background (ignored as 255
    after ``reduce_zero_label``) and ``k + 1`` for ``SHAPES[k]``.
    """

    METAINFO = dict(classes=SHAPES, palette=_PALETTE[:len(SHAPES)])
