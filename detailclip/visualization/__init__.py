"""Images of what a model does, for logs and for people."""
from .masks import PANEL_TITLES, PANELS, mask_panels, panel_grid, titled_grid, upscale

__all__ = ['PANEL_TITLES', 'PANELS', 'mask_panels', 'panel_grid', 'titled_grid', 'upscale']
