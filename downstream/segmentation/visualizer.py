"""Segmentation overlays that leave the ignored pixels (background, ``ignore_index``) as the image."""
from typing import List, Optional

import cv2
import numpy as np
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

LABEL_OUTLINE = 2  # pixels of the outline mmseg draws around a class-name label (1 below 300 pixels, else 2)


@VISUALIZERS.register_module()
class IgnoreAwareSegVisualizer(SegLocalVisualizer):
    """mmseg's :class:`SegLocalVisualizer` with the ignored pixels left as the image.

    mmseg blends every pixel with its class colour and ignored pixels with black, and the prediction colours every
    pixel, also the background no metric scores, so the objects drown in colour. Here the pixels whose label is no
    class (the ignore index, 255 after ``reduce_zero_label``) keep the image, in the ground truth and, where the ground
    truth ignores them, in the prediction; class-name labels stay drawn wherever they fall. Arguments are
    :class:`SegLocalVisualizer`'s.
    """

    def add_datasample(self, name: str, image: np.ndarray, data_sample=None, *args, **kwargs) -> None:
        """mmseg's drawing, with the prediction on the pixels the ground truth ignores set to an ignored label."""
        if data_sample is not None and 'gt_sem_seg' in data_sample and 'pred_sem_seg' in data_sample:
            data_sample = data_sample.clone()
            pred, num_classes = data_sample.pred_sem_seg.data.clone(), len(self.dataset_meta['classes'])
            pred[data_sample.gt_sem_seg.data.to(pred.device) >= num_classes] = num_classes
            data_sample.pred_sem_seg = PixelData(data=pred)
        super().add_datasample(name, image, data_sample, *args, **kwargs)

    def _draw_sem_seg(self, image: np.ndarray, sem_seg: PixelData, classes: Optional[List],
                      palette: Optional[List], with_labels: Optional[bool] = True) -> np.ndarray:
        """mmseg's overlay (H, W, 3) with the pixels of no class put back to ``image`` (H, W, 3), except where a
        class-name label was drawn over them."""
        drawn = super()._draw_sem_seg(image, sem_seg, classes, palette, with_labels)
        plain = super()._draw_sem_seg(image, sem_seg, classes, palette, with_labels=False) if with_labels else drawn
        no_class = np.asarray(sem_seg.cpu().data[0]) >= len(classes)
        # a label's black outline equals mmseg's black on no-class pixels: grow the label boxes over their outline
        under_label = cv2.dilate((drawn != plain).any(axis=-1).astype(np.uint8), np.ones((3, 3), np.uint8),
                                 iterations=LABEL_OUTLINE).astype(bool)
        overlay = np.where((no_class & ~under_label)[..., None], image, drawn)
        self.set_image(overlay)
        return overlay
