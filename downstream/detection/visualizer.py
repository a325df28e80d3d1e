"""Detection drawings whose label texts stay inside the image."""
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer


@VISUALIZERS.register_module()
class LabelInsideDetVisualizer(DetLocalVisualizer):
    """mmdet's :class:`DetLocalVisualizer` with every text (and its background box) moved the least distance that
    puts it inside the image.

    mmdet writes a box's label from the box's top-left corner to the right and down, so the label of an object at
    the right or bottom edge ran off the image and was cut. Arguments are :class:`DetLocalVisualizer`'s.
    """

    def draw_texts(self, texts, positions, *args, **kwargs):
        first = len(self.ax_save.texts)
        drawn = super().draw_texts(texts, positions, *args, **kwargs)
        renderer = self.fig_save_canvas.get_renderer()
        bounds = self.ax_save.get_window_extent(renderer)  # the image, in display pixels
        for text in self.ax_save.texts[first:]:
            text.update_bbox_position_size(renderer)
            box = (text.get_bbox_patch() or text).get_window_extent(renderer)
            dx = max(bounds.x0 - box.x0, 0) + min(bounds.x1 - box.x1, 0)
            dy = max(bounds.y0 - box.y0, 0) + min(bounds.y1 - box.y1, 0)
            x, y = self.ax_save.transData.transform(text.get_position())
            text.set_position(self.ax_save.transData.inverted().transform((x + dx, y + dy)))
        return drawn
