"""The EMA ("mean") teacher: a frozen copy of chosen student parts, moved towards the student after each step."""
import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from .encoders.batching import encode_views


class EMATeacher(nn.Module):
    """Frozen exponential-moving-average copy of student submodules (BYOL arXiv 2006.07733; DINO 2104.14294).

    The copies never get gradients and stay in eval mode (``bn_batch_stats=True`` lets BatchNorm layers use batch
    statistics, as A-CLIP's EMA projector does). :meth:`update` is the only place they change; the EMA hook calls it
    once per optimizer step with the scheduled momentum, using foreach ops.

    ``shared`` parts are not copied: the twin uses the student's live parameter or submodule there (A-CLIP's and
    DetailCLIP's EMA text tower keeps EMA blocks but the student's token and positional embeddings and ``ln_final``,
    methods.md Q-D13). They are not registered in the twin, so they are neither EMA-updated nor frozen, and they
    appear in the state dict once, under the student's name; they follow the student through ``to()``, ``cuda()``
    and in-place loads, which keep parameter objects (``load_state_dict(assign=True)`` would break the link).

    Args:
        student (nn.Module): The pretrainer the twins are copied from.
        modules (Sequence[str]): Dotted submodule paths of ``student`` to copy (e.g. ``image_encoder``,
            ``objectives.ibot.head``).
        bn_batch_stats (bool): Keep BatchNorm layers of the twins in training mode.
        views (Sequence[int], optional): Which of the teacher views it encodes (DINO/iBOT: the global crops only);
            all when None. ``context['teacher']`` lists follow this order.
        foreach (bool): Update with one ``torch._foreach_lerp_`` over all parameters; False: a Python loop over
            parameters (the reference's way, kept for benchmarks). A plain attribute, switchable at run time.
        shared (Sequence[str]): Dotted paths of ``student`` parameters or submodules inside ``modules`` that the twins
            use live instead of copying, e.g. ``text_encoder.token_embedding``; empty (the default): whole copies.
    """

    def __init__(self, student: nn.Module, modules: Sequence[str], bn_batch_stats: bool = False,
                 views: Optional[Sequence[int]] = None, foreach: bool = True, shared: Sequence[str] = ()):
        super().__init__()
        self.foreach = foreach
        self.views = None if views is None else list(views)
        self.paths = list(dict.fromkeys(modules))
        self.twins = nn.ModuleDict({twin_key(p): copy.deepcopy(student.get_submodule(p)) for p in self.paths})
        self.twins.requires_grad_(False)
        self.shared = list(dict.fromkeys(shared))
        for name in self.shared:
            self._share(student, name)
        self.bn_batch_stats = bn_batch_stats
        self.train(False)

    def _share(self, student: nn.Module, name: str) -> None:
        """Replace the twin's copy of student part ``name`` by an unregistered reference to the student's own."""
        path = next((p for p in self.paths if name.startswith(p + '.')), None)
        if path is None:
            raise ValueError(f'teacher.shared entry {name!r} is not inside a copied module {self.paths}')
        owner, _, attr = name[len(path) + 1:].rpartition('.')
        twin_owner = self.twin(path).get_submodule(owner)
        if attr not in twin_owner._parameters and attr not in twin_owner._modules:
            raise ValueError(f'teacher.shared entry {name!r} names no parameter or submodule of the student')
        live = getattr(student.get_submodule(path).get_submodule(owner), attr)
        delattr(twin_owner, attr)
        twin_owner.__dict__[attr] = live  # a plain attribute: found before nn.Module's registries, never copied

    def train(self, mode: bool = True) -> 'EMATeacher':
        """Stay in eval mode whatever the pretrainer's mode (BatchNorm excepted when ``bn_batch_stats``)."""
        super().train(False)
        if self.bn_batch_stats:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.train(mode)
        return self

    def twin(self, path: str) -> nn.Module:
        """The EMA copy of the student submodule at ``path``."""
        return self.twins[twin_key(path)]

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        """Make every twin equal to its student submodule (after the student's weights were (re)initialised)."""
        for path in self.paths:
            source = student.get_submodule(path).state_dict()
            twin = self.twin(path)
            twin.load_state_dict({k: source[k] for k in twin.state_dict()})

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student, for every copied parameter (shared parts are
        the student's already)."""
        teacher_params, student_params = [], []
        for path in self.paths:
            source = dict(student.get_submodule(path).named_parameters())
            for name, param in self.twin(path).named_parameters():
                teacher_params.append(param)
                student_params.append(source[name].detach())
        if self.foreach:
            torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
            return
        for teacher_param, student_param in zip(teacher_params, student_params):
            teacher_param.mul_(momentum).add_(student_param, alpha=1.0 - momentum)

    @torch.no_grad()
    def encode(self, views: List[torch.Tensor], batch: bool = True) -> Dict[str, list]:
        """Teacher tokens (B, 1 + N, D) and CLS attention (B, N) for each chosen (B, 3, H, W) view, never masked;
        same-sized views share one pass unless ``batch`` is False (see :func:`encode_views`)."""
        views = views if self.views is None else [views[i] for i in self.views]
        outs = encode_views(self.twin('image_encoder'), views, return_cls_attn=True, batch=batch)
        return dict(tokens=[o['tokens'] for o in outs], cls_attn=[o['cls_attn'] for o in outs])


def twin_key(path: str) -> str:
    """Key of the EMA twin of student submodule ``path`` in ``EMATeacher.twins`` (ModuleDict keys cannot hold dots)."""
    return path.replace('.', '__')
