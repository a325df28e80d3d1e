"""The EMA ("mean") teacher: a frozen copy of chosen student parts, moved towards the student after each step."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


class EMATeacher(nn.Module):
    """Frozen exponential-moving-average copy of student submodules (BYOL arXiv 2006.07733; DINO 2104.14294).

    The copies never get gradients and stay in eval mode (``bn_batch_stats=True`` lets BatchNorm layers use batch
    statistics, as A-CLIP's teacher projector does). :meth:`update` is the only place they change; the EMA hook calls it
    once per optimizer step with the scheduled momentum, using foreach ops.

    ``shared`` parts are not copied: the copy uses the student's live parameter or submodule there (A-CLIP's and
    DetailCLIP's teacher text tower keeps EMA blocks but the student's token and positional embeddings and
    ``ln_final``, docs/methods.md Q-D13). They are not registered in the copy, so they are neither EMA-updated nor
    frozen, and they appear in the state dict once, under the student's name; they follow the student through
    ``to()``, ``cuda()`` and in-place loads, which keep parameter objects (``load_state_dict(assign=True)`` would
    break the link).

    Args:
        student (nn.Module): The pretrainer the copies are made from.
        modules (Sequence[str]): Dotted submodule paths of ``student`` to copy (e.g. ``image_encoder``,
            ``objectives.ibot.head``).
        bn_batch_stats (bool): Keep BatchNorm layers of the copies in training mode.
        views (Sequence[int], optional): Which of the teacher views it encodes (DINO/iBOT: the global crops only);
            all when None. ``context['teacher']`` lists follow this order.
        shared (Sequence[str]): Dotted paths of ``student`` parameters or submodules inside ``modules`` that the copies
            use live instead of copying, e.g. ``text_encoder.token_embedding``; empty (the default): whole copies.
    """

    def __init__(self, student: nn.Module, modules: Sequence[str], bn_batch_stats: bool = False,
                 views: Optional[Sequence[int]] = None, shared: Sequence[str] = ()):
        super().__init__()
        self.views = None if views is None else list(views)
        self.paths = list(dict.fromkeys(modules))
        self.copies = nn.ModuleDict({copy_key(p): copy.deepcopy(student.get_submodule(p)) for p in self.paths})
        self.copies.requires_grad_(False)
        self.shared = list(dict.fromkeys(shared))
        for name in self.shared:
            self._share(student, name)
        self.bn_batch_stats = bn_batch_stats
        self.train(False)

    def _share(self, student: nn.Module, name: str) -> None:
        """Replace the teacher's copy of student part ``name`` by an unregistered reference to the student's own."""
        path = next((p for p in self.paths if name.startswith(p + '.')), None)
        if path is None:
            raise ValueError(f'teacher.shared entry {name!r} is not inside a copied module {self.paths}')
        owner, _, attr = name[len(path) + 1:].rpartition('.')
        copy_owner = self.copy_of(path).get_submodule(owner)
        if attr not in copy_owner._parameters and attr not in copy_owner._modules:
            raise ValueError(f'teacher.shared entry {name!r} names no parameter or submodule of the student')
        live = getattr(student.get_submodule(path).get_submodule(owner), attr)
        delattr(copy_owner, attr)
        copy_owner.__dict__[attr] = live  # a plain attribute: found before nn.Module's registries, never copied

    def train(self, mode: bool = True) -> 'EMATeacher':
        """Stay in eval mode whatever the pretrainer's mode (BatchNorm excepted when ``bn_batch_stats``)."""
        super().train(False)
        if self.bn_batch_stats:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.train(mode)
        return self

    def copy_of(self, path: str) -> nn.Module:
        """The teacher's copy of the student submodule at ``path``."""
        return self.copies[copy_key(path)]

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        """Make every copy equal to its student submodule (after the student's weights were (re)initialised)."""
        for path in self.paths:
            source = student.get_submodule(path).state_dict()
            target = self.copy_of(path)
            target.load_state_dict({k: source[k] for k in target.state_dict()})

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student, for every copied parameter (shared parts are
        the student's already), in one ``torch._foreach_lerp_``."""
        torch._foreach_lerp_(*self._paired_parameters(student), 1.0 - momentum)

    def _paired_parameters(self, student: nn.Module) -> Tuple[List[nn.Parameter], List[torch.Tensor]]:
        """Every parameter of the copies and the (detached) student parameter it follows, in two aligned lists."""
        teacher_params, student_params = [], []
        for path in self.paths:
            source = dict(student.get_submodule(path).named_parameters())
            for name, param in self.copy_of(path).named_parameters():
                teacher_params.append(param)
                student_params.append(source[name].detach())
        return teacher_params, student_params

    @torch.no_grad()
    def encode(self, views: List[torch.Tensor]) -> Dict[str, list]:
        """Teacher tokens (B, 1 + N, D) and CLS attention (B, N) for each chosen (B, 3, H, W) view, never masked;
        same-sized views share one pass (``VisionTransformer.forward_views``)."""
        views = views if self.views is None else [views[i] for i in self.views]
        outs = self.copy_of('image_encoder').forward_views(views, return_cls_attn=True)
        return dict(tokens=[o['tokens'] for o in outs], cls_attn=[o['cls_attn'] for o in outs])


def copy_key(path: str) -> str:
    """Key of the teacher's copy of student submodule ``path`` in ``EMATeacher.copies`` (ModuleDict keys cannot
    hold dots)."""
    return path.replace('.', '__')
