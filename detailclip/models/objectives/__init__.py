from .base import Objective, select
from .clip import CLIPObjective

__all__ = ['CLIPObjective', 'Objective', 'select']
