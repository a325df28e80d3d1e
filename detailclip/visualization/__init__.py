"""Images of what a model does, for logs and for people."""
from .masks import PANELS, mask_panels, panel_grid

__all__ = ['PANELS', 'mask_panels', 'panel_grid']
