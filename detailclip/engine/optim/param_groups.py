"""AdamW parameter groups of the SLIP-family code (docs/methods.md 1.6), with the reference rule behind a flag."""
from typing import Dict, List

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch import nn

from detailclip.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

# Reference rule (docs/methods.md Q-D12): a substring of the name or ndim < 2 exempts a parameter from weight decay.
REFERENCE_NO_DECAY = ('bias', 'ln', 'bn')
# Optimizers with a fused kernel (one kernel per step for all parameters) that we default to when available.
FUSED_OPTIMIZERS = ('Adam', 'AdamW')
# Clean rule: additionally exempt embeddings and tokens, which are not weights of a linear map.
CLEAN_NO_DECAY = REFERENCE_NO_DECAY + ('pos_embed', 'cls_token', 'mask_token', 'positional_embedding',
                                       'token_embedding', 'logit_scale', 'norm')


def is_no_decay(name: str, param: nn.Parameter, wd_rule: str) -> bool:
    """Whether ``param`` (named ``name``) is exempt from weight decay under ``wd_rule`` (reference or clean)."""
    if wd_rule not in ('reference', 'clean'):
        raise ValueError(f'unknown wd_rule {wd_rule!r}: use "reference" or "clean"')
    keys = REFERENCE_NO_DECAY if wd_rule == 'reference' else CLEAN_NO_DECAY
    return param.ndim < 2 or any(k in name for k in keys)


def param_groups(model: nn.Module, weight_decay: float, wd_rule: str = 'clean') -> List[Dict]:
    """Two groups (decay, no decay) of the trainable parameters; frozen ones (EMA teacher) are left out."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if is_no_decay(name, param, wd_rule) else decay).append(param)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.)]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class CLIPOptimWrapperConstructor:
    """Builds the optimizer over :func:`param_groups` and wraps it.

    Adam/AdamW get torch's fused kernel (``fused=True``) when the config names no implementation (``fused`` or
    ``foreach``) and torch has one for the parameters' device: one kernel for all parameters (its cost against the
    per-parameter loop: the "optimizer" stage of ``tools/analysis/benchmark.py``, docs/performance_figures.md).
    ``foreach=False`` selects the plain per-parameter loop of older torch (the reference's).

    Args:
        optim_wrapper_cfg (dict): ``dict(type=..., optimizer=dict(type='AdamW', lr=..., weight_decay=...), ...)``.
        paramwise_cfg (dict, optional): ``dict(wd_rule='reference' | 'clean')``.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        self.wrapper_cfg = dict(optim_wrapper_cfg)
        self.optimizer_cfg = dict(self.wrapper_cfg.pop('optimizer'))
        self.wd_rule = (paramwise_cfg or {}).get('wd_rule', 'clean')

    def __call__(self, model: nn.Module) -> OptimWrapper:
        model = model.module if is_model_wrapper(model) else model
        optimizer = build_optimizer(dict(self.optimizer_cfg, params=self.groups(model)))
        self.wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(self.wrapper_cfg, default_args=dict(optimizer=optimizer))

    def groups(self, model: nn.Module) -> List[dict]:
        """The optimizer's parameter groups of the unwrapped ``model`` (subclasses change the grouping)."""
        return param_groups(model, self.optimizer_cfg.get('weight_decay', 0.), self.wd_rule)


def build_optimizer(cfg: dict):
    """Build an optimizer config, as fused Adam/AdamW where it names no implementation and a kernel exists."""
    name = cfg['type'] if isinstance(cfg['type'], str) else cfg['type'].__name__
    if name in FUSED_OPTIMIZERS and 'fused' not in cfg and 'foreach' not in cfg:
        try:
            return OPTIMIZERS.build(dict(cfg, fused=True))
        except RuntimeError:  # no fused kernel for these parameters' device or dtype (e.g. CPU before torch 2.4)
            pass
    return OPTIMIZERS.build(cfg)
