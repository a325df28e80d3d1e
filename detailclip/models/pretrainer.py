"""The one generic image-text pretrainer; a method is a config choosing its parts."""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from detailclip.registry import MODELS
from .objectives.base import execution_order
from .teacher import EMATeacher

# The networks a model can be evaluated or exported as: the trained student, and the EMA teacher's copies of its parts
# (A-CLIP, DetailCLIP, ...).
NETWORKS = ('student', 'teacher')


@MODELS.register_module()
class ImageTextPretrainer(BaseModel):
    """CLIP-family pretrainer (CLIP arXiv 2103.00020; DetailCLIP arXiv 2409.06809 builds on the same substrate).

    ``loss()`` follows the method diagram: EMA teacher (only if an objective or the masker needs it) -> masker ->
    student encoder on every view -> projections and text encoder -> each objective reads the shared context
    (:mod:`detailclip.models.objectives.base`) and returns its ``loss_*`` terms and metrics. The image/text
    projections and the logit scale belong to the pretrainer because evaluation (zero-shot, retrieval) uses them.

    Args:
        image_encoder (dict): Image encoder config (e.g. ``VisionTransformer``); must expose ``embed_dim``,
            ``forward_encoder(x) -> dict(tokens=(B, 1 + N, D), ...)`` and ``forward_views`` (it on a list of views).
        objectives (dict[str, dict]): Objective configs by name, run in this order (providers of context entries
            first, see :func:`~detailclip.models.objectives.base.execution_order`); each is an
            :class:`~detailclip.models.objectives.Objective` whose ``forward(context, teacher_copies)`` returns a
            dict of ``loss_*`` tensors and logged metrics.
        text_encoder (dict, optional): Text encoder config (``CLIPTextTransformer``); None for image-only methods.
        masker (dict, optional): Masker config (``RandomMask``, ``AttentionMask``, ``BlockMask``); None: no masking.
        teacher (dict, optional): EMA teacher options: ``modules`` (student submodule paths to copy; the objectives'
            ``teacher_modules`` are added), ``bn_batch_stats`` and ``shared`` (student parts the copies use live, see
            :class:`EMATeacher`). Required when an objective or the masker needs it.
        embed_dim (int): Joint image-text embedding width.
        logit_scale_init (float): Initial log of the contrastive logit multiplier (ln(1/0.07)).
        logit_scale_max (float): Upper clamp of the log multiplier applied after each step (ln 100).
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self, image_encoder: dict, objectives: Dict[str, dict], text_encoder: Optional[dict] = None,
                 masker: Optional[dict] = None, teacher: Optional[dict] = None, embed_dim: int = 512,
                 logit_scale_init: float = math.log(1 / 0.07),
                 logit_scale_max: float = math.log(100), data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        # built here, not by BaseModel, so the detailclip registry resolves it without a default scope
        super().__init__(data_preprocessor=MODELS.build(data_preprocessor or dict(type='ImageTextDataPreprocessor')),
                         init_cfg=init_cfg)
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder) if text_encoder else None
        if self.text_encoder is not None:
            self.image_projection = _projection(self.image_encoder.embed_dim, embed_dim)
            self.text_projection = _projection(self.text_encoder.width, embed_dim)
            self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
            self.logit_scale_max = logit_scale_max
        built = {name: MODELS.build(cfg) for name, cfg in objectives.items()}
        self.objectives = nn.ModuleDict({name: built[name] for name in execution_order(built)})
        self.masker = MODELS.build(masker) if masker else None
        self.teacher = self._build_teacher(teacher)
        self.eval_networks: List[str] = ['student']

    def _build_teacher(self, cfg: Optional[dict]) -> Optional[EMATeacher]:
        if cfg is None:
            if self._teacher_runs():
                raise ValueError('an objective or the masker needs the EMA teacher: set model.teacher=dict(...)')
            return None
        cfg = dict(cfg)
        modules = list(cfg.pop('modules', ['image_encoder']))
        modules += [f'objectives.{n}.{m}' for n, o in self.objectives.items() for m in o.teacher_modules]
        if 'image_encoder' not in modules:
            modules.insert(0, 'image_encoder')
        return EMATeacher(self, modules, **cfg)

    def init_weights(self) -> None:
        """Initialise the student (MMEngine calls this before training), then copy it into the EMA teacher."""
        super().init_weights()
        if self.teacher is not None:
            self.teacher.copy_from(self)

    def forward(self, inputs: dict, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """MMEngine entry point: ``mode`` is ``'loss'``, ``'predict'`` or ``'tensor'`` (image embeddings)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':  # projected embeddings, or encoder CLS features for image-only methods
            cls = self.encode_cls(inputs['views'][0])
            return cls if self.text_encoder is None else self.image_projection(cls)
        raise ValueError(f'unknown mode {mode!r}: use "loss", "predict" or "tensor"')

    def loss(self, inputs: dict, data_samples: Optional[list] = None) -> Dict[str, torch.Tensor]:
        """Every objective's terms on one batch; keys starting with ``loss_`` are summed for backward."""
        context = self.image_context(inputs, data_samples)
        if self.text_encoder is not None:
            context['image_embeds'] = torch.stack([self.image_projection(t[:, 0]) for t in context['image_tokens']])
            context['text_embeds'] = self.encode_text(inputs['text'])
            context['logit_scale'] = self.logit_scale.exp()
        losses = {}
        for name, objective in self.objectives.items():
            losses.update(objective(context, self._teacher_copies(name, objective)))
        if self.text_encoder is not None:
            losses['logit_scale'] = context['logit_scale'].detach()
        return losses

    def image_context(self, inputs: dict, data_samples: Optional[list] = None) -> dict:
        """The image half of the objectives' context: the batch, the teacher's outputs, the masks and the student
        tokens (see objectives/base.py); :meth:`loss` adds the text entries, visualisations read it as it is."""
        context = self._context(inputs, data_samples)
        context['teacher'] = self.teacher.encode(context['teacher_views']) if self._teacher_runs() else None
        context['masks'] = self.masker(context) if self.masker else [None] * len(context['views'])
        context['num_masked'] = [None if mask is None else self.masker.num_masked(context, v)
                                 for v, mask in enumerate(context['masks'])]
        self._encode_students(context)
        return context

    def _context(self, inputs: dict, data_samples: Optional[list]) -> dict:
        """The batch as the context objectives and maskers read (see objectives/base.py)."""
        patch = self.image_encoder.patch_embed.patch_size
        views = inputs['views']
        return dict(views=views, teacher_views=inputs.get('teacher_views') or views, boxes=inputs.get('boxes'),
                    data_samples=data_samples, training=self.training,
                    grid_sizes=[(v.shape[-2] // patch[0], v.shape[-1] // patch[1]) for v in views],
                    mask_mode=getattr(self.masker, 'mode', 'remove'))

    def _teacher_runs(self) -> bool:
        """Whether an objective or the masker reads the teacher's outputs."""
        return any(o.needs_teacher for o in self.objectives.values()) or getattr(self.masker, 'needs_teacher', False)

    def _encode_students(self, context: dict) -> None:
        """Student tokens (B, 1 + N_keep, D) and kept indices per view, views batched where they can be."""
        outs = self.image_encoder.forward_views(context['views'], context['masks'], context['num_masked'],
                                                mask_mode=context['mask_mode'])
        context['image_tokens'] = [o['tokens'] for o in outs]
        context['ids_keep'] = [o['ids_keep'] for o in outs]

    def _teacher_copies(self, name: str, objective: nn.Module) -> Dict[str, nn.Module]:
        """The teacher's copies of ``objective``'s ``teacher_modules``, by name."""
        if self.teacher is None:
            return {}
        return {m: self.teacher.copy_of(f'objectives.{name}.{m}') for m in objective.teacher_modules}

    def update_teacher(self, momentum: float) -> None:
        """Move the EMA teacher towards the student (called by :class:`EMATeacherHook` after each step)."""
        if self.teacher is None:
            raise RuntimeError('update_teacher() called on a model without an EMA teacher (model.teacher is None)')
        self.teacher.update(self, momentum)

    def set_teacher_temp(self, **temps: float) -> None:
        """Named setter for scheduled teacher temperatures (e.g. ``cls=0.04, patch=0.07``), passed to every
        objective that has ``set_teacher_temp``."""
        for objective in self.objectives.values():
            if hasattr(objective, 'set_teacher_temp'):
                objective.set_teacher_temp(**temps)

    def submodule(self, path: str, network: str = 'student') -> nn.Module:
        """The student submodule at ``path`` (e.g. ``image_encoder``), or the teacher's copy of it for
        ``network='teacher'``."""
        if network == 'student':
            return self.get_submodule(path)
        if network not in NETWORKS:
            raise ValueError(f'unknown network {network!r}: use one of {NETWORKS}')
        if not self.teacher_has(path):
            raise ValueError(f'network="teacher" needs the teacher\'s copy of {path!r}, which this model does not '
                             f'keep: list {path!r} in model.teacher.modules in the config, or evaluate '
                             f'network="student"')
        return self.teacher.copy_of(path)

    def teacher_has(self, *paths: str) -> bool:
        """Whether the EMA teacher keeps a copy of every student submodule in ``paths``."""
        return self.teacher is not None and all(p in self.teacher.paths for p in paths)

    def request_eval_networks(self, networks: Sequence[str]) -> None:
        """Make :meth:`predict` also encode ``networks`` (metrics call this in ``prepare``); the student always
        is."""
        for network in networks:
            self.submodule('image_encoder', network)  # fails now, naming the config fix, if the copy does not exist
            if network not in self.eval_networks:
                self.eval_networks.append(network)

    def encode_cls(self, images: torch.Tensor, network: str = 'student') -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) encoder CLS feature after the final norm (what kNN probes and exports use)."""
        return self.submodule('image_encoder', network).forward_encoder(images)['tokens'][:, 0]

    def encode_image(self, images: torch.Tensor, network: str = 'student') -> torch.Tensor:
        """(B, 3, H, W) -> (B, embed_dim) projected CLS embedding (not normalised)."""
        return self.submodule('image_projection', network)(self.encode_cls(images, network))

    def encode_text(self, tokens: torch.Tensor, network: str = 'student') -> torch.Tensor:
        """(B, L) token ids -> (B, embed_dim) projected EOT embedding (not normalised)."""
        if self.text_encoder is None:
            raise RuntimeError('this model has no text encoder (an image-only method): zero-shot and retrieval '
                               'evaluation need one')
        return self.submodule('text_projection', network)(self.submodule('text_encoder', network)(tokens))

    def predict(self, inputs: dict, data_samples: list) -> list:
        """Attach to each data sample, for every network in ``eval_networks``, the L2-normalised encoder CLS feature
        ``image_feats`` (D,) (kNN probes); with a text tower also ``image_embeds`` (embed_dim,) and, for samples that
        carry ``caption_tokens`` (n, L), ``text_embeds`` (n, embed_dim). Teacher fields are named
        ``teacher_<field>`` (:func:`network_field`) and hold what the teacher's copies can encode."""
        for network in self.eval_networks:
            self._predict_network(inputs['views'][0], data_samples, network)
        return data_samples

    def _predict_network(self, images: torch.Tensor, samples: list, network: str) -> None:
        """The fields of :meth:`predict` for one network, from (B, 3, H, W) ``images``."""
        cls = self.encode_cls(images, network)
        _attach(samples, network_field('image_feats', network), F.normalize(cls, dim=-1))
        if self.text_encoder is None or (network != 'student' and not self.teacher_has('image_projection')):
            return
        embeds = F.normalize(self.submodule('image_projection', network)(cls), dim=-1)
        _attach(samples, network_field('image_embeds', network), embeds)
        captioned = [s for s in samples if 'caption_tokens' in s]
        if captioned and (network == 'student' or self.teacher_has('text_encoder', 'text_projection')):
            self._embed_captions(captioned, network)

    def _embed_captions(self, samples: list, network: str) -> None:
        """Attach ``text_embeds`` (n, embed_dim), normalised, to samples with ``caption_tokens``; one text pass."""
        device = self.logit_scale.device
        tokens = torch.cat([s.caption_tokens for s in samples]).to(device)
        text = F.normalize(self.encode_text(tokens, network), dim=-1).split([len(s.caption_tokens) for s in samples])
        _attach(samples, network_field('text_embeds', network), text)

    @torch.no_grad()
    def clamp_logit_scale(self) -> None:
        """Clamp the log logit scale to [0, logit_scale_max] (called by a hook after each optimizer step)."""
        if self.text_encoder is not None:
            self.logit_scale.clamp_(0, self.logit_scale_max)


def network_field(name: str, network: str) -> str:
    """Data-sample field of ``name`` (e.g. ``image_embeds``) for ``network``: the student's plain, the teacher's
    ``teacher_<name>``."""
    return name if network == 'student' else f'{network}_{name}'


def _attach(samples: list, field: str, values) -> None:
    """Set ``field`` of each data sample to its row of ``values`` ((B, ...) tensor or B tensors)."""
    for sample, value in zip(samples, values):
        sample.set_field(value, field)


def _projection(in_dim: int, out_dim: int) -> nn.Linear:
    """Bias-free linear projection initialised with std in_dim^-1/2 (CLIP)."""
    proj = nn.Linear(in_dim, out_dim, bias=False)
    nn.init.normal_(proj.weight, std=in_dim ** -0.5)
    return proj
