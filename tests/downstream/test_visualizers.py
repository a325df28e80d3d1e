"""The downstream drawings people look at: segmentation overlays that leave the ignored background as the image, and
detection labels that stay inside the image."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from PIL import Image

from detailclip.testing import ROOT

H = W = 64
GREY = 200  # the test image: one grey, so any drawn pixel differs from it


def _seg_sample(gt: torch.Tensor, pred: torch.Tensor):
    from mmseg.structures import SegDataSample
    sample = SegDataSample()
    sample.gt_sem_seg, sample.pred_sem_seg = PixelData(data=gt[None]), PixelData(data=pred[None])
    return sample


def _seg_visualizer(name: str):
    from mmseg.registry import VISUALIZERS

    from downstream.segmentation import SyntheticWorldADE20KDataset
    cfg = Config.fromfile(f'{ROOT}/downstream/segmentation/configs/_base_/default_runtime.py')
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name=name, vis_backends=None))  # one instance per name
    visualizer.dataset_meta = SyntheticWorldADE20KDataset.METAINFO
    return visualizer


@pytest.mark.parametrize('with_labels', [False, True])
def test_segmentation_overlay_leaves_ignored_pixels_as_the_image(tmp_path, with_labels):
    """Ground truth | prediction: a square of class 2 on an ignored (255) background; the prediction says class 0
    everywhere else (unscored there). Only the square is coloured, in both panels; labels stay drawn."""
    gt = torch.full((H, W), 255, dtype=torch.long)
    gt[16:48, 16:48] = 2
    pred = torch.where(gt == 2, 2, 0)
    image = np.full((H, W, 3), GREY, dtype=np.uint8)
    out = tmp_path / 'seg.png'
    _seg_visualizer(f'seg-{with_labels}').add_datasample('x', image, _seg_sample(gt, pred), with_labels=with_labels,
                                                         out_file=str(out))
    drawn = np.asarray(Image.open(out).convert('RGB'))
    assert drawn.shape == (H, 2 * W, 3)
    for panel in (drawn[:, :W], drawn[:, W:]):
        square, ignored = panel[16:48, 16:48], panel[gt.numpy() == 255]
        assert (square != GREY).any(axis=-1).all()  # the class colour
        unchanged = (ignored == GREY).all(axis=-1).mean()
        assert unchanged == 1.0 if not with_labels else unchanged > 0.8  # a label box may lie on the background
    if with_labels:  # the class name's box starts at the square's centre row and runs right
        plain = tmp_path / 'plain.png'
        _seg_visualizer('seg-plain').add_datasample('x', image, _seg_sample(gt, pred), with_labels=False,
                                                    out_file=str(plain))
        assert (drawn != np.asarray(Image.open(plain).convert('RGB'))).any()


def test_detection_label_at_the_edge_stays_inside():
    """A box in the top-right corner: mmdet writes its label right of the box's left edge, off the image."""
    from mmdet.registry import VISUALIZERS
    from mmdet.structures import DetDataSample
    cfg = Config.fromfile(f'{ROOT}/downstream/detection/configs/_base_/default_runtime.py')
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='det-test', vis_backends=None))
    visualizer.dataset_meta = dict(classes=('circle', 'triangle'), palette=[(220, 20, 60), (0, 0, 230)])
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[W - 12., 4., W - 1., 16.]]), labels=torch.tensor([1]))
    image = np.full((H, W, 3), GREY, dtype=np.uint8)
    visualizer.add_datasample('x', image, sample, draw_pred=False)
    drawn = visualizer.get_image()
    dark = np.nonzero((drawn.astype(int).sum(-1) < 150).any(axis=0))[0]  # columns of the black label box
    assert dark.min() < W - 30  # 'triangle' is wider than the 11 pixels right of the box's left edge
    assert dark.max() <= W - 1
