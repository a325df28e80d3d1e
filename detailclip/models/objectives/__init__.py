from .base import Objective, select
from .clip import CLIPObjective
from .dino import DINOObjective
from .ibot import IBOTObjective
from .mae import MAEObjective
from .maskclip import MaskedDistillationObjective
from .ssl import BYOLObjective, SimCLRObjective
from .supervised import SupervisedObjective

__all__ = ['BYOLObjective', 'CLIPObjective', 'DINOObjective', 'IBOTObjective', 'MAEObjective',
           'MaskedDistillationObjective', 'Objective', 'SimCLRObjective', 'SupervisedObjective', 'select']
