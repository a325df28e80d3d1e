"""Loading a config the way every command-line tool does (overrides, launcher, work dir, validation)."""
import argparse
import collections.abc
import difflib
import inspect
import os
import os.path as osp
import types
import typing
import warnings
from typing import Callable, Dict, Iterator, List, Literal, Optional, Tuple, Union

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import CheckpointHook
from mmengine.registry import DefaultScope, Registry
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from detailclip.datasets.transforms.views import transform_class
from detailclip.registry import DATASETS, HOOKS, LOOPS, MODELS, OPTIM_WRAPPERS, OPTIMIZERS, TRANSFORMS


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
        warn_unknown_top_level(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if launcher != 'none' and not torch.cuda.is_available():
        use_cpu_ddp(cfg)
    cfg.work_dir = work_dir or cfg.get('work_dir') or (
        default_work_dir(cfg) if default_work_dir else osp.join('work_dirs', osp.splitext(osp.basename(path))[0]))
    validate_config(cfg)
    return cfg


class ConfigWarning(UserWarning):
    """A config setting that is probably not what the user meant (it has no effect)."""


# Top-level keys the Runner reads; the other top-level keys of a config file are its own variables.
RUNNER_KEYS = frozenset(inspect.signature(Runner.__init__).parameters) - {'self'} | {'runner_type', 'launcher'}


def warn_unknown_top_level(file_cfg: Config, cfg_options: dict) -> None:
    """Warn about each top-level key that ``--cfg-options`` sets and nothing reads: a key neither the Runner nor the
    config file knows (a typo, with a did-you-mean over the keys one level down), or a variable of the file, whose
    value was already used when the file loaded."""
    nested = _nested_keys(file_cfg)
    for key in sorted({k.split('.')[0] for k in cfg_options} - RUNNER_KEYS):
        if key in file_cfg:
            users = [p for top in sorted(RUNNER_KEYS & set(file_cfg)) for p in _paths_named(file_cfg[top], key, top)]
            warnings.warn(f'--cfg-options {key}=...: {key!r} is a variable of the config file, already used when the '
                          f'file loaded, so setting it changes nothing; set the keys that use it instead '
                          f'({", ".join(users) or "the nested keys"})', ConfigWarning)
            continue
        close = difflib.get_close_matches(key, sorted(RUNNER_KEYS | set(nested)), n=1, cutoff=0.6)
        hint = (f"did you mean '{(nested.get(close[0]) or close)[0]}'?" if close
                else 'the Runner reads ' + ', '.join(sorted(RUNNER_KEYS)))
        warnings.warn(f'--cfg-options {key}=...: unknown top-level key, nothing reads it; {hint}', ConfigWarning)


def _dicts(part, prefix: str) -> Iterator[Tuple[str, dict]]:
    """Every dict inside ``part`` (``part`` too) with its dotted path from ``prefix`` (list items as ``[i]``)."""
    if isinstance(part, (list, tuple)):
        for i, item in enumerate(part):
            yield from _dicts(item, f'{prefix}[{i}]')
    elif isinstance(part, dict):
        yield prefix, part
        for name, value in part.items():
            yield from _dicts(value, f'{prefix}.{name}')


def _paths_named(part, name: str, prefix: str) -> List[str]:
    """Dotted paths of every key ``name`` inside ``part``."""
    return [f'{path}.{name}' for path, d in _dicts(part, prefix) if name in d]


def _nested_keys(cfg: Config) -> Dict[str, List[str]]:
    """``{name: ['<top>.<name>', ...]}`` over the keys one level down, and the arguments of the loops and the optim
    wrapper (``train_cfg.max_iters`` although the config sets ``max_epochs``)."""
    nested = collections.defaultdict(list)
    registries = dict(train_cfg=LOOPS, val_cfg=LOOPS, test_cfg=LOOPS, optim_wrapper=OPTIM_WRAPPERS)
    for top, value in cfg.items():
        if not isinstance(value, dict):
            continue
        cls = _resolve(value.get('type'), registries[top]) if top in registries and 'type' in value else None
        for name in {*value, *((accepted_arguments(cls) or {}) if cls is not None else {})}:
            nested[name].append(f'{top}.{name}')
    return nested


# --- Validation ----------------------------------------------------------------------------------------------------
# Runs on the merged config before the Runner builds anything or reads data, and reports every problem at once.

class ConfigError(ValueError):
    """The config has mistakes; the message lists each one with the key and the fix."""


_UNCHECKED_KEYS = ('init_cfg', )  # dicts typed from other registries (weight initialisers)
_CHILD_REGISTRIES = {'pipeline': TRANSFORMS, 'optimizer': OPTIMIZERS}  # keys typed from another registry
_CONSTRUCTOR_KEYS = ('constructor', 'paramwise_cfg')  # optim_wrapper keys its constructor reads, not the wrapper
_NON_NEGATIVE = ('lr', 'weight_decay', 'eps', 'momentum')
_LOOP_ARGUMENTS = ('runner', 'dataloader', 'evaluator')  # the Runner passes these
# Classes whose **kwargs all go to one function: they accept its arguments too, and no others.
_FORWARDED_KWARGS = {CheckpointHook: Runner.save_checkpoint}
_DATALOADER_ARGUMENTS = {**inspect.signature(DataLoader.__init__).parameters}
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
    problems += _check_masker(model.get('masker')) + _check_optim_wrapper(cfg.get('optim_wrapper'))
    problems += _check_dataloaders(cfg) + _check_loops(cfg)
    if dataset and isinstance(dataset.get('pipeline'), list) and not problems:
        problems += _check_views(model, dataset['pipeline'])
    return problems + _check_context_length(cfg, model)


def _check_optim_wrapper(wrapper: Optional[dict]) -> List[str]:
    """The wrapper's and the optimizer's arguments, and non-negative rates."""
    if not isinstance(wrapper, dict):
        return []
    own = {k: v for k, v in wrapper.items() if k not in _CONSTRUCTOR_KEYS}
    problems = check_arguments(dict(own, type=own.get('type', 'OptimWrapper')), 'optim_wrapper', OPTIM_WRAPPERS)
    optimizer = wrapper.get('optimizer') or {}
    for name in _NON_NEGATIVE:
        value = optimizer.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            problems.append(f'optim_wrapper.optimizer.{name}={value!r} is negative: it must be >= 0')
    return problems


def _check_dataloaders(cfg: Config) -> List[str]:
    """Dataloader arguments (torch's DataLoader takes them, the Runner builds ``sampler`` and the rest) and a
    positive batch size."""
    problems = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not isinstance(loader, dict):
            continue
        for arg in loader:
            if arg not in _DATALOADER_ARGUMENTS:
                problems.append(_unknown_argument(key, arg, 'DataLoader', _DATALOADER_ARGUMENTS))
        size = loader.get('batch_size')
        if not (isinstance(size, int) and not isinstance(size, bool) and size > 0):
            problems.append(f'{key}.batch_size={size!r}: it must be a positive int (samples per process)')
    return problems


def _check_loops(cfg: Config) -> List[str]:
    """``train_cfg`` / ``val_cfg`` / ``test_cfg`` against the loop they build (a ``type``, or MMEngine's defaults:
    ``by_epoch`` picks the epoch- or iteration-based train loop, ValLoop and TestLoop otherwise)."""
    defaults = dict(val_cfg='ValLoop', test_cfg='TestLoop')
    problems = []
    for key in ('train_cfg', 'val_cfg', 'test_cfg'):
        loop = cfg.get(key)
        if not isinstance(loop, dict) or not loop:
            continue
        loop = dict(loop)
        by_epoch = loop.pop('by_epoch', None) if 'type' not in loop else None
        default = ('EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop') if key == 'train_cfg' else defaults[key]
        problems += _check_typed(dict(loop, type=loop.get('type', default)), key, LOOPS, _LOOP_ARGUMENTS)
    return problems


def _check_context_length(cfg: Config, model: dict) -> List[str]:
    """Every Tokenize of the pipelines and every evaluator's ``context_length`` fits the text encoder's positions:
    a longer caption would reach positions the encoder does not have."""
    encoder = model.get('text_encoder')
    positions = _argument(encoder, 'context_length', MODELS) if isinstance(encoder, dict) else None
    if not isinstance(positions, int):
        return []
    found = {}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator'):
        found.update(_context_lengths(cfg.get(key), key))
    return [f'{key}={length} is longer than model.text_encoder.context_length={positions}: captions of up to '
            f'{length} tokens would reach a text encoder with {positions} positions; give both the same value'
            for key, length in found.items() if isinstance(length, int) and length > positions]


def _context_lengths(part, key: str) -> Dict[str, int]:
    """``{dotted key: context_length}`` of every Tokenize transform (its default filled in) and evaluator inside
    ``part``."""
    return {f'{path}.context_length': _argument(d, 'context_length', TRANSFORMS) for path, d in _dicts(part, key)
            if 'context_length' in d or d.get('type') == 'Tokenize'}


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
            problems += check_arguments(value, f'{key}.{name}', _CHILD_REGISTRIES.get(name, registry))
    return problems


def _check_typed(cfg: dict, key: str, registry: Registry, given: Tuple[str, ...] = ()) -> List[str]:
    """Problems of one typed dict; ``given`` are arguments its builder passes itself (not the config's to set)."""
    cls = _resolve(cfg['type'], registry)
    if cls is None:
        return _unknown_type(cfg['type'], key, registry)
    params = accepted_arguments(cls)
    if params is None:
        return []
    params = {n: p for n, p in params.items() if n not in given}
    name_of = getattr(cls, '__name__', str(cls))
    problems = []
    for arg, value in cfg.items():
        if arg == 'type':
            continue
        if arg not in params:
            problems.append(_unknown_argument(key, arg, name_of, params))
        elif not _is_instance(value, params[arg].annotation):
            problems.append(f'{key}.{arg}={value!r}: {name_of} expects {_type_name(params[arg].annotation)}, got '
                            f'{type(value).__name__}')
    return problems


def _unknown_argument(key: str, arg: str, name_of: str, params: Dict[str, inspect.Parameter]) -> str:
    close = difflib.get_close_matches(arg, list(params), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f'it takes {", ".join(sorted(params)) or "none"}'
    return f'{key}.{arg}: {name_of} has no argument {arg!r}; {hint}'


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
    """A type no registry on the path knows, with a 'did you mean' (another library's scoped name is left to it)."""
    if not isinstance(type_, str) or '.' in type_:
        return []
    names, node = set(), registry
    while node is not None:
        names |= set(node.module_dict)
        node = node.parent
    close = difflib.get_close_matches(type_, sorted(names), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else (
        f'register your class with @{registry.name.upper()}S.register_module() and import it (custom_imports), or '
        f'use one of {", ".join(sorted(registry.module_dict))}')
    return [f'{key}.type={type_!r} is not a registered {registry.name} type; {hint}']


def accepted_arguments(cls) -> Optional[Dict[str, inspect.Parameter]]:
    """The keyword arguments ``cls`` (a class or function) takes, with resolved annotations, or None when it takes
    arbitrary ones. ``**kwargs`` passed on to a base class are followed along the MRO."""
    if not inspect.isclass(cls):
        params, takes_kwargs = _own_arguments(cls)
        return None if takes_kwargs else params
    params, forwards = {}, False
    for klass in cls.__mro__:
        if klass in _FORWARDED_KWARGS:
            own, _ = _own_arguments(klass.__init__)
            target, _ = _own_arguments(_FORWARDED_KWARGS[klass])
            return {**target, **own, **params}
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


# Annotations a config value is checked against, and the Python types that fit each.
_SIMPLE = {bool: (bool, ), int: (int, ), float: (int, float), str: (str, ), dict: (dict, ), list: (list, tuple),
           tuple: (list, tuple)}


def _is_instance(value, ann) -> bool:
    """Whether a config value fits annotation ``ann``; anything not understood passes (lists stand for tuples). In a
    union, a class member is an isinstance check (``float | Tensor`` does not take a string)."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (Union, types.UnionType):
        return any(isinstance(value, a) if inspect.isclass(a) and typing.get_origin(a) is None and a not in _SIMPLE
                   else _is_instance(value, a) for a in args)
    if origin is Literal:
        return value in args
    if ann is type(None):
        return value is None
    if ann in _SIMPLE:
        return isinstance(value, _SIMPLE[ann]) and (ann is bool or not isinstance(value, bool))
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
        ``ratio_semantics`` (with the class defaults; None without a masker or when it has no such argument),
        ``masker_settings`` (every other argument the config sets on the masker, e.g. ``{'block_size': 2}``),
        ``loss_weights`` (``{'clip': 1.0, 'ibot.cls': 1.0, ...}``: each objective's ``weight`` under its name and
        each ``<term>_weight`` as ``<name>.<term>``, with the class defaults where the config sets none) and ``seed``
        (``randomness.seed``).
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
                masker_settings={k: v for k, v in (masker or {}).items()
                                 if k not in ('type', 'ratio', 'ratio_semantics')},
                loss_weights=weights, seed=(cfg.get('randomness') or {}).get('seed'))
