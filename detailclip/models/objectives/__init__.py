from .base import Objective, select
from .clip import CLIPObjective
from .mae import MAEObjective
from .ssl import BYOLObjective, SimCLRObjective
from .supervised import SupervisedObjective

__all__ = ['BYOLObjective', 'CLIPObjective', 'MAEObjective', 'Objective', 'SimCLRObjective', 'SupervisedObjective',
           'select']
