"""Losses: ``nn.Module``s with one ``forward(tensors...)``, registered in ``MODELS`` under their class names."""
from .clip_loss import CLIPInfoNCELoss
from .ibot_loss import DINOLoss, IBOTLoss
from .pixel_loss import PixelReconLoss
from .ssl_losses import BYOLLoss, SimCLRLoss

__all__ = ['BYOLLoss', 'CLIPInfoNCELoss', 'DINOLoss', 'IBOTLoss', 'PixelReconLoss', 'SimCLRLoss']
