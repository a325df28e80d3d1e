from .clip import CLIPObjective

__all__ = ['CLIPObjective']
