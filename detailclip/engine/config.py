"""Loading a config the way every command-line tool does (overrides, launcher, work dir, validation)."""
import argparse
import collections.abc
import difflib
import inspect
import os
import os.path as osp
import typing
from typing import Callable, Dict, List, Literal, Optional, Tuple, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope, Registry
from torch import nn

from detailclip.datasets.transforms.views import transform_class
from detailclip.registry import DATASETS, HOOKS, MODELS, TRANSFORMS


def use_cpu_ddp(cfg: Config) -> None:
    """DDP over gloo on CPU processes. MMEngine's launcher init and DDP wrapper pin a CUDA device (they fail without
    a driver), so the process group is initialised here (the Runner then skips its own init) and DDP gets no
    device ids."""
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                 find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group('gloo')  # env:// from torchrun / slurm's srun wrapper


def parse_runner_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Add the options every Runner tool shares (``--cfg-options``, ``--launcher``, ``--local-rank``) to ``parser``,
    parse ``argv`` and export ``LOCAL_RANK`` (``torch.distributed.launch`` passes the rank as an argument)."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None, default_work_dir: Optional[Callable[[Config], str]] = None) -> Config:
    """``path`` with ``--cfg-options`` merged, the launcher set (gloo DDP when there is no GPU), the work dir set and
    the result checked by :func:`validate_config` before anything is built. The work dir is ``work_dir``, else the
    config's (after ``cfg_options``), else ``default_work_dir(cfg)``, else ``work_dirs/<config name>``."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        use_cpu_ddp(cfg)
    cfg.work_dir = work_dir or cfg.get('work_dir') or (
        default_work_dir(cfg) if default_work_dir else osp.join('work_dirs', osp.splitext(osp.basename(path))[0]))
    validate_config(cfg)
    return cfg


# --- Validation ----------------------------------------------------------------------------------------------------
# Runs on the merged config before the Runner builds anything or reads data, and reports every problem at once.

class ConfigError(ValueError):
    """The config has mistakes; the message lists each one with the key and the fix."""


_UNCHECKED_KEYS = ('init_cfg', )  # dicts typed from other registries (weight initialisers)
_STUDENT_VIEW_KEYS = ('views', 'apply_to', 'global_views')
_TEACHER_VIEW_KEYS = ('teacher_view', 'teacher_views', 'global_views')


def validate_config(cfg: Config) -> None:
    """Check ``cfg`` against the registered classes and the training pipeline; raise :class:`ConfigError` listing
    every problem (unknown argument with a 'did you mean', wrong type, masker ratio outside (0, 1), a view size the
    patch size does not divide, a view index the pipeline does not make). Configs whose model is not one of ours
    (downstream mmseg/mmdet configs) are left to their libraries."""
    model = cfg.get('model')
    if not isinstance(model, dict) or 'objectives' not in model:
        return
    # Names resolve in the config's scope, whatever scope an earlier Runner (e.g. mmseg's) left as the default.
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'detailclip'):
        problems = _config_problems(cfg, model)
    if problems:
        raise ConfigError(f'{len(problems)} problem(s) in the config:\n  - ' + '\n  - '.join(problems))


def _config_problems(cfg: Config, model: dict) -> List[str]:
    problems = check_arguments(model, 'model', MODELS)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        problems += check_arguments(hook, f'default_hooks.{name}', HOOKS)
    problems += check_arguments(cfg.get('custom_hooks') or [], 'custom_hooks', HOOKS)
    dataset = (cfg.get('train_dataloader') or {}).get('dataset')
    problems += check_arguments(dataset, 'train_dataloader.dataset', DATASETS)
    problems += _check_masker(model.get('masker'))
    if dataset and isinstance(dataset.get('pipeline'), list) and not problems:
        problems += _check_views(model, dataset['pipeline'])
    return problems


def check_arguments(cfg, key: str, registry: Registry) -> List[str]:
    """Problems of every ``type``-keyed dict in ``cfg`` (recursively): arguments the registered class does not take
    and values whose type contradicts its annotation. ``pipeline`` lists are checked against TRANSFORMS."""
    if isinstance(cfg, (list, tuple)):
        return [p for i, item in enumerate(cfg) for p in check_arguments(item, f'{key}[{i}]', registry)]
    if not isinstance(cfg, dict):
        return []
    problems = _check_typed(cfg, key, registry) if 'type' in cfg else []
    for name, value in cfg.items():
        if name != 'type' and name not in _UNCHECKED_KEYS:
            problems += check_arguments(value, f'{key}.{name}', TRANSFORMS if name == 'pipeline' else registry)
    return problems


def _check_typed(cfg: dict, key: str, registry: Registry) -> List[str]:
    cls = _resolve(cfg['type'], registry)
    if cls is None:
        return _unknown_type(cfg['type'], key, registry)
    params = accepted_arguments(cls)
    if params is None:
        return []
    name_of = getattr(cls, '__name__', str(cls))
    problems = []
    for arg, value in cfg.items():
        if arg == 'type':
            continue
        if arg not in params:
            close = difflib.get_close_matches(arg, list(params), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f'it takes {", ".join(sorted(params)) or "none"}'
            problems.append(f'{key}.{arg}: {name_of} has no argument {arg!r}; {hint}')
        elif not _is_instance(value, params[arg].annotation):
            problems.append(f'{key}.{arg}={value!r}: {name_of} expects {_type_name(params[arg].annotation)}, got '
                            f'{type(value).__name__}')
    return problems


def _resolve(type_, registry: Registry):
    """The registered class or function named by ``type_`` (a class passes through), None if unknown or foreign."""
    if not isinstance(type_, str):
        return type_
    if '.' in type_ and not type_.startswith(f'{registry.scope}.'):
        return None  # another library's scope
    if registry is TRANSFORMS:  # as the views build them: our own transforms, then torchvision's
        try:
            return transform_class(type_)
        except KeyError:
            return None
    return registry.get(type_)


def _unknown_type(type_, key: str, registry: Registry) -> List[str]:
    """A 'did you mean' for a misspelled type; unknown names without a close match are left to the build."""
    if not isinstance(type_, str) or '.' in type_:
        return []
    names, node = set(), registry
    while node is not None:
        names |= set(node.module_dict)
        node = node.parent
    close = difflib.get_close_matches(type_, sorted(names), n=1, cutoff=0.8)
    return [f"{key}.type={type_!r} is not registered; did you mean '{close[0]}'?"] if close else []


def accepted_arguments(cls) -> Optional[Dict[str, inspect.Parameter]]:
    """The keyword arguments ``cls`` (a class or function) takes, with resolved annotations, or None when it takes
    arbitrary ones. ``**kwargs`` passed on to a base class are followed along the MRO."""
    if not inspect.isclass(cls):
        params, takes_kwargs = _own_arguments(cls)
        return None if takes_kwargs else params
    params, forwards = {}, False
    for klass in cls.__mro__:
        if klass is object:
            return None if forwards else params  # kwargs not passed on: the class consumes them itself
        if klass is nn.Module:
            return params  # nn.Module rejects unknown kwargs
        if '__init__' in vars(klass):
            own, forwards = _own_arguments(klass.__init__)
            params = {**(own or {}), **params}
            if not forwards:
                return params
    return params


def _own_arguments(fn) -> Tuple[Optional[Dict[str, inspect.Parameter]], bool]:
    """Keyword parameters of ``fn`` (annotations resolved) and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, True
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # annotations that do not resolve are not checked
        hints = {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = {n: p.replace(annotation=hints.get(n, inspect.Parameter.empty))
              for n, p in sig.parameters.items() if p.kind in kinds and n != 'self'}
    return params, any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _is_instance(value, ann) -> bool:
    """Whether a config value fits annotation ``ann``; anything not understood passes (lists stand for tuples)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is Union:
        return any(_is_instance(value, a) for a in args)
    if origin is Literal:
        return value in args
    if ann is type(None):
        return value is None
    simple = {bool: (bool, ), int: (int, ), float: (int, float), str: (str, ), dict: (dict, ), list: (list, tuple),
              tuple: (list, tuple)}
    if ann in simple:
        return isinstance(value, simple[ann]) and (ann is bool or not isinstance(value, bool))
    if origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _type_name(ann) -> str:
    if typing.get_origin(ann) is Union:
        return ' or '.join(_type_name(a) for a in typing.get_args(ann))
    if ann is type(None):
        return 'None'
    return ann.__name__ if isinstance(ann, type) else str(ann).replace('typing.', '')


def _check_masker(masker: Optional[dict]) -> List[str]:
    """The masking ratio is a fraction of the patch tokens: a number in (0, 1), or a range inside [0, 1)."""
    ratio = (masker or {}).get('ratio')
    if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and not 0 < ratio < 1:
        return [f'model.masker.ratio={ratio!r} is outside (0, 1): it is the fraction of patch tokens masked '
                '(e.g. 0.5); to train without masking remove model.masker']
    if isinstance(ratio, (list, tuple)) and not (len(ratio) == 2 and 0 <= ratio[0] <= ratio[1] < 1 and ratio[1] > 0):
        return [f'model.masker.ratio={list(ratio)!r} must be a range (low, high) with 0 <= low <= high < 1']
    return []


def _check_views(model: dict, pipeline: list) -> List[str]:
    """The patch size divides the image size and every view, and every view index the objectives, masker and
    teacher name is one the pipeline makes."""
    made = pipeline_views(pipeline)
    if made is None:
        return []
    student, teacher = made
    problems = _check_sizes(model.get('image_encoder', {}), student + teacher)
    teacher_cfg = model.get('teacher') or {}
    if teacher_cfg.get('views') is not None:
        problems += _check_indices(teacher_cfg['views'], 'model.teacher.views', len(teacher or student), 'teacher')
        teacher = list(teacher_cfg['views'])
    parts = {f'model.objectives.{n}': o for n, o in (model.get('objectives') or {}).items()}
    parts['model.masker'] = model.get('masker')
    for key, part in parts.items():
        for arg, value in _view_arguments(part).items():
            if arg in _STUDENT_VIEW_KEYS:
                problems += _check_indices(value, f'{key}.{arg}', len(student), 'student')
            if arg in _TEACHER_VIEW_KEYS:
                problems += _check_indices(value, f'{key}.{arg}', len(teacher or student), 'teacher')
    return problems


def _check_sizes(encoder: dict, view_sizes: List[Tuple[int, int]]) -> List[str]:
    """The encoder's patch size divides its ``img_size`` and the (H, W) of every view the pipeline makes."""
    patch, img_size = (_argument(encoder, name, MODELS) for name in ('patch_size', 'img_size'))
    if not isinstance(patch, int):
        return []
    problems = []
    if any(size % patch for size in _pair(img_size)):
        problems.append(f'model.image_encoder.img_size={img_size!r} is not divisible by '
                        f'model.image_encoder.patch_size={patch}: use a multiple of {patch}')
    bad = [f'{h}x{w}' for h, w in view_sizes if h % patch or w % patch]
    if bad:
        problems.append(f'train_dataloader.dataset.pipeline makes {", ".join(bad)} views that '
                        f'model.image_encoder.patch_size={patch} does not divide: make the crop sizes multiples '
                        f'of {patch}')
    return problems


def _pair(size) -> List[int]:
    """An int or (H, W) size as a list; anything else as an empty list (not checked)."""
    if isinstance(size, int):
        return [size]
    return list(size) if isinstance(size, (list, tuple)) else []


def _check_indices(value, key: str, count: int, who: str) -> List[str]:
    indices = [value] if isinstance(value, int) else list(value)
    if not indices or max(indices) < count:
        return []
    return [f'{key}={value!r} needs {who} view {max(indices)}, but the training pipeline '
            f'(train_dataloader.dataset.pipeline) gives the {who} {count} view(s) (indices 0..{count - 1}): use a '
            f'pipeline with at least {max(indices) + 1} {who} views (e.g. two_view_pipeline for two-view '
            f'objectives) or change {key}']


def _view_arguments(part: Optional[dict]) -> dict:
    """The view-index arguments of a typed config dict, its class defaults filled in (None values dropped)."""
    if not isinstance(part, dict) or 'type' not in part:
        return {}
    cls = _resolve(part['type'], MODELS)
    params = (accepted_arguments(cls) if cls is not None else None) or {}
    defaults = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    merged = {**defaults, **part}
    return {k: merged[k] for k in _STUDENT_VIEW_KEYS + _TEACHER_VIEW_KEYS if merged.get(k) is not None}


def _argument(part: dict, name: str, registry: Registry):
    """``part[name]``, or the default of the registered class's argument ``name``."""
    if name in part:
        return part[name]
    cls = _resolve(part.get('type'), registry)
    param = ((accepted_arguments(cls) if cls is not None else None) or {}).get(name)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def pipeline_views(pipeline: list) -> Optional[Tuple[List[Tuple[int, int]], List[Tuple[int, int]]]]:
    """(H, W) of the student and teacher views the pipeline's view transform makes, found by running each transform
    on a blank image (no data is read); None when no transform makes views. Transforms that need other keys (the
    loader, the tokenizer) fail on the blank input and are passed over."""
    from PIL import Image
    for transform_cfg in pipeline:
        with DefaultScope.overwrite_default_scope(TRANSFORMS.scope):
            transform = TRANSFORMS.build(transform_cfg)
        try:
            out = transform({'img': Image.new('RGB', (256, 256))})
        except (KeyError, TypeError, AttributeError):
            continue
        if isinstance(out, dict) and 'views' in out:
            return ([tuple(v.shape[-2:]) for v in out['views']],
                    [tuple(v.shape[-2:]) for v in out.get('teacher_views', [])])
    return None


def run_settings(cfg: Config) -> dict:
    """What an ablation varies, read from a training config (W&B tags and the ablation table use it).

    Returns:
        dict: ``method`` (the config name's first field, ``detailclip_vit-...`` -> ``detailclip``; the objective
        names joined by ``+`` for a config without such a name), ``masker`` (its type, or None), ``mask_ratio`` and
        ``ratio_semantics`` (None without a masker), ``loss_weights`` (``{'clip': 1.0, 'ibot.cls': 1.0, ...}``: each
        objective's ``weight`` under its name and each ``<term>_weight`` as ``<name>.<term>``, with the class defaults
        where the config sets none) and ``seed`` (``randomness.seed``).
    """
    model = cfg.get('model') or {}
    objectives = model.get('objectives') or {}
    name = osp.basename(cfg.filename) if cfg.filename else ''
    masker = model.get('masker')
    weights = {}
    for obj_name, objective in objectives.items():
        params = accepted_arguments(_resolve(objective['type'], MODELS)) or {}
        for arg in dict.fromkeys([*params, *objective]):
            if arg == 'weight' or arg.endswith('_weight'):
                label = obj_name if arg == 'weight' else f'{obj_name}.{arg[:-len("_weight")]}'
                weights[label] = _argument(objective, arg, MODELS)
    return dict(method=name.split('_')[0] if '_' in name else '+'.join(objectives),
                masker=masker['type'] if masker else None,
                mask_ratio=_argument(masker, 'ratio', MODELS) if masker else None,
                ratio_semantics=_argument(masker, 'ratio_semantics', MODELS) if masker else None,
                loss_weights=weights, seed=(cfg.get('randomness') or {}).get('seed'))
