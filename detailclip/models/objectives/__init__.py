from .base import Objective, select
from .clip import CLIPObjective
from .ibot import DINOObjective, IBOTObjective
from .mae import MAEObjective
from .ssl import BYOLObjective, SimCLRObjective
from .supervised import SupervisedObjective

__all__ = ['BYOLObjective', 'CLIPObjective', 'DINOObjective', 'IBOTObjective', 'MAEObjective', 'Objective',
           'SimCLRObjective', 'SupervisedObjective', 'select']
