"""Losses: ``nn.Module``s with one ``forward(tensors...)``, registered in ``MODELS`` under their class names."""
from .clip_loss import CLIPInfoNCELoss

__all__ = ['CLIPInfoNCELoss']
