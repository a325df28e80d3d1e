"""Training-step benchmark of a pretraining config: time, images/s, memory, FLOPs, utilisation and a stage breakdown.

One run (in this process)::

    python tools/analysis/benchmark.py CONFIG [--batch 8] [--steps 5] [--warmup 2] [--amp] [--compile]
        [--device cpu|cuda] [--naive] [--grad-checkpointing] [--img-size S] [--threads T] [--malloc reuse|system]
        [--caption-length L] [--breakdown-steps 2 | --no-breakdown] [--ops] [--json OUT]

Several variants, each in its own process (peak RSS never falls within a process), printed as one table whose ratios
are against the first variant::

    python tools/analysis/benchmark.py CONFIG --variants naive optimized naive-bf16 optimized-bf16

A variant is '-'-joined tokens: ``optimized`` | ``naive``, ``fp32`` | ``bf16`` (``--amp``), ``compile``, ``ckpt``
(``--grad-checkpointing``), ``b<N>`` (batch), ``s<N>`` (image size), ``c<N>`` (caption length), ``reuse`` |
``sysmalloc`` (``--malloc``). Saved runs are tabulated with ``--report A.json B.json ...``.

What a step is: the real model built from the config's registry entries (``ImageTextPretrainer``), synthetic uint8
views of the config's view count and size and full-length caption tokens through the model's own data
preprocessor, ``model.train_step`` with the optim wrapper built from the config's ``optim_wrapper`` (its constructor
and optimizer: fused AdamW where torch has the kernel), then what the hooks do after every iteration: the EMA teacher
update (momentum 0.996) and the logit-scale clamp. Masks come from the model's own masker.

``--naive`` switches the model to the reference's straightforward way (``tools/analysis/naive.py``); the results are
the same (tests/models/test_naive_equivalence.py). Host memory: an optimized run reuses freed memory between steps as
``tools/train.py`` does (the config's ``env_cfg.reuse_freed_memory``, :func:`reuse_freed_memory`), a naive run keeps
glibc's default, as the reference's plain ``python main.py`` does; ``--malloc reuse|system`` sets either explicitly.

Measurements:

- seconds per step: the median over ``--steps`` steps after ``--warmup`` (the first warm-up step also counts FLOPs);
- peak memory: the process's RSS high-water mark (``VmHWM``) on the CPU, ``torch.cuda.max_memory_allocated`` on a
  GPU; activation memory = peak - (RSS before the first step, which holds the model, or the model's bytes on a GPU)
  - gradient bytes - optimizer-state bytes;
- FLOPs per step: ``torch.utils.flop_counter.FlopCounterMode`` over one step (matmuls, convolutions, attention;
  forward and backward), with the CPU flash-attention kernels registered; utilisation = FLOPs / step time / the
  device's measured matmul peak for the step's dtype (the best of square matmul loops before and after the steps);
- stage breakdown: wall time of named calls (teacher, masker, student encoder, text encoder, decoder, heads, losses,
  the rest of the forward, backward, optimizer, EMA), each charged exclusively of the calls nested in it, over
  ``--breakdown-steps`` steps after the timed ones (on a GPU each boundary synchronises, and compiled regions break
  their graphs around the wrapped calls, so the timed steps run unwrapped). ``--no-breakdown`` leaves them out;
- op split (``--ops``): one more step op by op (:class:`OpTimer`), the seconds in FLOP-counted ops (the matmul work
  the utilisation is about), in every other op and outside ops (Python, autograd), with the slowest other ops: how
  far a step is from its matmul floor.
"""
import argparse
import functools
import json
import logging
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from detailclip.models.encoders.text import ResidualAttentionBlock  # noqa: E402
from detailclip.models.heads.ibot_head import IBOTHead  # noqa: E402
from detailclip.models.heads.mae_decoder import MAEDecoder  # noqa: E402
from detailclip.registry import MODELS  # noqa: E402
from detailclip.utils.host_reads import reads_to_host  # noqa: E402
from detailclip.utils.memory import config_reuses_freed_memory, reuse_freed_memory  # noqa: E402
from tools.analysis.naive import apply_naive, naive_optimizer  # noqa: E402

EMA_MOMENTUM = 0.996
STAGES = ('data', 'teacher', 'masker', 'student encoder', 'text encoder', 'decoder', 'heads', 'losses',
          'other forward', 'backward', 'optimizer', 'EMA', 'unaccounted')
_CPU_ATTENTION = ('_scaled_dot_product_flash_attention_for_cpu', '_scaled_dot_product_flash_attention_for_cpu_backward')


def _register_cpu_attention_flops() -> None:
    """FlopCounterMode counts the CUDA attention kernels only; count the CPU flash kernels with the same formulas."""
    aten = torch.ops.aten
    for name, formula in zip(_CPU_ATTENTION, (flop_counter.sdpa_flop, flop_counter.sdpa_backward_flop)):
        op = getattr(aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            flop_counter.flop_registry[op] = formula


_register_cpu_attention_flops()


# ------------------------------------------------------------------------------------------------ building a step
def step_inputs(cfg: Config, batch: int, img_size: Optional[int], num_views: Optional[int],
                caption_length: Optional[int] = None, seed: int = 0) -> dict:
    """Synthetic ``pseudo_collate`` output of the config's shapes: V lists of B (3, S, S) uint8 views and B caption
    token rows (SOT, random ids, EOT at ``caption_length`` - 1, then padding; full length by default), as the data
    preprocessor takes them."""
    gen = torch.Generator().manual_seed(seed)
    views, size = _view_layout(cfg, img_size, num_views)
    inputs = dict(views=[[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen)
                          for _ in range(batch)] for _ in range(views)])
    text = cfg.model.get('text_encoder')
    if text:
        vocab, context = text.get('vocab_size', 49408), text.get('context_length', 77)
        length = caption_length or context
        if not 2 <= length <= context:
            raise ValueError(f'--caption-length must lie in [2, {context}] (SOT and EOT within the context), '
                             f'got {length}')
        tokens = torch.randint(1, vocab - 2, (batch, context), generator=gen)
        tokens[:, 0], tokens[:, length - 1], tokens[:, length:] = vocab - 2, vocab - 1, 0  # SOT ... EOT, padding
        inputs['text'] = list(tokens)
    return dict(inputs=inputs, data_samples=None)


def _view_layout(cfg: Config, img_size: Optional[int], num_views: Optional[int]):
    """(number of views, side) from the train pipeline's ``MultiView`` (or the overrides)."""
    multi = [t for t in cfg.train_dataloader.dataset.pipeline if t.get('type') == 'MultiView']
    if num_views is None:
        if not multi:
            raise ValueError('the benchmark reads the view count from a MultiView transform in the train pipeline; '
                             'this config has none: pass --views V')
        t = multi[0]
        num_views = len(t['views']) * t.get('num_repeats', 1) * t.get('copies', 1)
    size = img_size or (multi[0].get('size') if multi else None) or cfg.model.image_encoder.get('img_size', 224)
    return num_views, size


def build_model(cfg: Config, naive: bool, device: str, img_size: Optional[int], grad_checkpointing: bool):
    """The config's model, initialised (the teacher copies the student), in train mode on ``device``."""
    if img_size:
        cfg.model.image_encoder.img_size = img_size
    model = MODELS.build(cfg.model)
    model.init_weights()
    if naive:
        apply_naive(model)
    if grad_checkpointing:
        for module in (model.image_encoder, getattr(model, 'text_encoder', None)):
            if module is not None:
                module.set_grad_checkpointing(True)
    model.set_teacher_temp(cls=0.04, patch=0.07)
    return model.to(device).train()


def build_wrapper(cfg: Config, model: nn.Module, naive: bool, amp: bool, device: str):
    """The config's optim wrapper (constructor, parameter groups, optimizer), as bf16 autocast with ``amp``."""
    wrapper = {k: v for k, v in cfg.optim_wrapper.items() if k not in ('loss_scale', 'dtype')}
    wrapper['type'] = 'AutocastOptimWrapper' if amp else 'OptimWrapper'
    if amp:
        wrapper.update(dtype='bfloat16', device_type=device)
    init_default_scope('detailclip')
    return build_optim_wrapper(model, naive_optimizer(wrapper) if naive else wrapper)


def compile_blocks(model: nn.Module, memory_budget: Optional[float] = None) -> None:
    """Regional ``torch.compile``: every transformer block (encoders, the teacher's copies, decoder) and every iBOT/DINO
    head compiled in place. ``memory_budget`` in (0, 1] lets the partitioner of each compiled region keep that
    fraction of the activations it would keep by default and recompute the rest in backward
    (``torch._functorch.config.activation_memory_budget``)."""
    from timm.models.vision_transformer import Block
    if memory_budget is not None:
        import torch._functorch.config
        torch._functorch.config.activation_memory_budget = memory_budget
    for module in model.modules():
        if isinstance(module, (Block, ResidualAttentionBlock, IBOTHead)):
            module.compile()


def train_step(model: nn.Module, wrapper, data: dict) -> None:
    """One training iteration as the runner does it: forward, backward, optimizer step, then the EMA and
    logit-scale hooks."""
    model.train_step(data, wrapper)
    if model.teacher is not None:
        model.update_teacher(EMA_MOMENTUM)
    model.clamp_logit_scale()


# ------------------------------------------------------------------------------------------------------- timing
class StageTimer:
    """Wall time of named calls, each charged exclusively of the timed calls nested in it."""

    def __init__(self, device: str):
        self.sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
        self.totals: Dict[str, float] = defaultdict(float)
        self.stack: List[str] = []
        self.last = 0.0

    def wrap(self, obj, attr: str, stage: str) -> None:
        """Time every call of ``obj.<attr>`` (a method or a module's ``forward``) as ``stage``."""
        fn = getattr(obj, attr)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._switch(push=stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch()

        setattr(obj, attr, timed)

    def _switch(self, push: Optional[str] = None) -> None:
        self.sync()
        now = time.perf_counter()
        if self.stack:
            self.totals[self.stack[-1]] += now - self.last
        if push is None:
            self.stack.pop()
        else:
            self.stack.append(push)
        self.last = now

    def pop_totals(self) -> Dict[str, float]:
        totals, self.totals = dict(self.totals), defaultdict(float)
        return totals


class OpTimer(TorchDispatchMode):
    """Wall time of every aten op run while active (forward, backward, optimizer), by op name. The FLOP-counted ops
    (``flop_counter.flop_registry``: matmuls, convolutions, fused attention) are the step's matmul work; the rest
    are elementwise ops, copies, reductions and the like. It also counts the ops that read tensor values back to
    the host (:func:`~detailclip.utils.host_reads.reads_to_host`: a host-device sync each on a GPU). On a GPU every
    op synchronises."""

    def __init__(self, device: str):
        super().__init__()
        self.sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        self.flop_ops = set()
        self.host_reads = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.host_reads += reads_to_host(func, args, kwargs)
        tic = time.perf_counter()
        out = func(*args, **kwargs)
        self.sync()
        name = func.overloadpacket.__name__
        self.seconds[name] += time.perf_counter() - tic
        self.calls[name] += 1
        if func.overloadpacket in flop_counter.flop_registry:
            self.flop_ops.add(name)
        return out

    def summary(self, step_s: float, top: int = 6) -> dict:
        """Seconds in FLOP-counted ops and in the other ops of a ``step_s`` step, the number of host reads, and the
        ``top`` other ops as [name, seconds, calls], slowest first."""
        other = sorted((s, n) for n, s in self.seconds.items() if n not in self.flop_ops)
        return dict(step_s=step_s, flop_ops_s=sum(self.seconds[n] for n in self.flop_ops),
                    other_ops_s=sum(s for s, _ in other), host_reads=self.host_reads,
                    top=[[n, s, self.calls[n]] for s, n in reversed(other[-top:])])


def instrument(model: nn.Module, wrapper, timer: StageTimer) -> None:
    """Wrap the calls that make up the stages of a step."""
    timer.wrap(model, 'forward', 'other forward')
    timer.wrap(model.data_preprocessor, 'forward', 'data')
    timer.wrap(model.image_encoder, 'forward_encoder', 'student encoder')
    for name in ('text_encoder', 'masker'):
        if getattr(model, name, None) is not None:
            timer.wrap(getattr(model, name), 'forward', name.replace('_', ' '))
    for name in ('image_projection', 'text_projection'):
        if hasattr(model, name):
            timer.wrap(getattr(model, name), 'forward', 'heads')
    if model.teacher is not None:
        timer.wrap(model.teacher, 'encode', 'teacher')
        for key, teacher_copy in model.teacher.copies.items():
            if key != 'image_encoder':
                timer.wrap(teacher_copy, 'forward', 'teacher')
        timer.wrap(model, 'update_teacher', 'EMA')
    for objective in model.objectives.values():
        for child in objective.children():
            loss = getattr(objective, 'loss', None)
            stage = 'decoder' if isinstance(child, MAEDecoder) else 'losses' if child is loss else 'heads'
            timer.wrap(child, 'forward', stage)
    timer.wrap(wrapper, 'backward', 'backward')
    timer.wrap(wrapper, 'step', 'optimizer')
    timer.wrap(wrapper, 'zero_grad', 'optimizer')


def matmul_peak(device: str, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best FLOP/s of square matmuls on ``device`` in ``dtype`` over ``seconds`` of repeats (on a GPU 8192^2, eight
    to a synchronisation, so that neither launch nor sync latency counts)."""
    size, repeats = (8192, 8) if device == 'cuda' else (2048, 1)
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    a @ b
    sync()
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        tic = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        best = max(best, repeats * 2 * size ** 3 / (time.perf_counter() - tic))
    return best


def _rss(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (ru_maxrss where /proc is missing)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def memory_record(model: nn.Module, wrapper, device: str, base_rss: int) -> dict:
    """Peak, static (model, gradients, optimizer state) and activation bytes."""
    model_bytes = _tensor_bytes(model.parameters()) + _tensor_bytes(model.buffers())
    grad_bytes = _tensor_bytes(p for p in model.parameters() if p.requires_grad)
    optim_bytes = _tensor_bytes(v for state in wrapper.optimizer.state.values() for v in state.values())
    if device == 'cuda':
        peak, base = torch.cuda.max_memory_allocated(), model_bytes
    else:
        peak, base = _rss('VmHWM'), base_rss
    return dict(peak_bytes=peak, base_bytes=base, model_bytes=model_bytes, grad_bytes=grad_bytes,
                optim_bytes=optim_bytes, activation_bytes=peak - base - grad_bytes - optim_bytes)


# --------------------------------------------------------------------------------------------------- one run
def run(args) -> dict:
    """Build, warm up, time and measure one variant in this process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = args.device
    cfg = Config.fromfile(args.config)
    if malloc_setting(args, cfg) == 'reuse' and not reuse_freed_memory():
        raise SystemExit('--malloc reuse needs glibc (mallopt); pass --malloc system')
    peak_flops = matmul_peak(device, torch.bfloat16 if args.amp else torch.float32)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model = build_model(cfg, args.naive, device, args.img_size, args.grad_checkpointing)
    finally:
        logger.setLevel(level)
    wrapper = build_wrapper(cfg, model, args.naive, args.amp, device)
    data = step_inputs(cfg, args.batch, args.img_size, args.views, args.caption_length)
    base_rss = _rss('VmRSS')
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    with flop_counter.FlopCounterMode(display=False) as counter:
        train_step(model, wrapper, data)  # the first warm-up step
    if args.compile:
        compile_blocks(model, args.memory_budget)
    for _ in range(max(args.warmup - 1, 0) + (1 if args.compile else 0)):
        train_step(model, wrapper, data)
    times = [timed_step(model, wrapper, data, device) for _ in range(args.steps)]
    peak_flops = max(peak_flops, matmul_peak(device, torch.bfloat16 if args.amp else torch.float32))  # less noisy
    record = _record(args, cfg, model, wrapper, data, times, counter.get_total_flops(), peak_flops, base_rss)
    record['breakdown'] = (stage_breakdown(model, wrapper, data, device, args.breakdown_steps, args.compile)
                           if args.breakdown_steps else {})
    if args.ops:  # after the memory record: a step under a Python dispatch mode holds tensors a little longer
        record['ops'] = op_times(model, wrapper, data, device)
    return record


def timed_step(model: nn.Module, wrapper, data: dict, device: str) -> float:
    """Seconds of one :func:`train_step` (on a GPU up to the end of its last kernel)."""
    tic = time.perf_counter()
    train_step(model, wrapper, data)
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - tic


def stage_breakdown(model: nn.Module, wrapper, data: dict, device: str, steps: int, compiled: bool) -> dict:
    """Median seconds per stage over ``steps`` more steps with the stage calls wrapped (:func:`instrument`), and
    'unaccounted', the rest of each step. These are not the timed steps: on a GPU every stage boundary synchronises,
    and compiled regions break their graphs around the wrappers (their retrace runs in one untimed step first)."""
    timer = StageTimer(device)
    instrument(model, wrapper, timer)
    for _ in range(int(compiled)):
        train_step(model, wrapper, data)
    timer.pop_totals()
    stages = defaultdict(list)
    for _ in range(steps):
        seconds = timed_step(model, wrapper, data, device)
        totals = timer.pop_totals()
        totals['unaccounted'] = seconds - sum(totals.values())
        for stage, value in totals.items():
            stages[stage].append(value)
    return {stage: statistics.median(values) for stage, values in stages.items()}


def op_times(model: nn.Module, wrapper, data: dict, device: str) -> dict:
    """:meth:`OpTimer.summary` of one more step, run under the timer."""
    timer = OpTimer(device)
    tic = time.perf_counter()
    with timer:
        train_step(model, wrapper, data)
    return timer.summary(time.perf_counter() - tic)


def malloc_setting(args, cfg: Config) -> str:
    """``--malloc``, else 'system' for ``--naive`` (the reference's environment), else the config's
    ``env_cfg.reuse_freed_memory`` as ``tools/train.py`` applies it."""
    if args.malloc:
        return args.malloc
    return 'reuse' if not args.naive and config_reuses_freed_memory(cfg) else 'system'


def _record(args, cfg, model, wrapper, data, times, flops, peak_flops, base_rss) -> dict:
    step = statistics.median(times)
    views = data['inputs']['views']
    return dict(
        label=args.label or _default_label(args), config=osp.basename(args.config), batch=args.batch,
        views=len(views), img_size=views[0][0].shape[-1], caption_length=args.caption_length,
        precision='bf16 autocast' if args.amp else 'fp32',
        naive=args.naive, malloc=malloc_setting(args, cfg), compile=args.compile, memory_budget=args.memory_budget,
        grad_checkpointing=args.grad_checkpointing, device=device_name(args),
        threads=torch.get_num_threads(), torch=torch.__version__, steps=args.steps, warmup=args.warmup,
        step_s=step, step_s_all=times, images_per_s=args.batch / step, flops=flops, flops_per_s=flops / step,
        peak_flops=peak_flops, utilisation=flops / step / peak_flops,
        **memory_record(model, wrapper, args.device, base_rss))


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo ('CPU' where there is none)."""
    try:
        with open('/proc/cpuinfo') as f:
            return next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), 'CPU')
    except OSError:
        return 'CPU'


def device_name(args) -> str:
    if args.device == 'cuda':
        return torch.cuda.get_device_name()
    return f'{cpu_name()}, {os.cpu_count()} cores'


def _default_label(args) -> str:
    parts = [osp.splitext(osp.basename(args.config))[0].split('_')[0], 'naive' if args.naive else 'optimized',
             'bf16' if args.amp else 'fp32', f'b{args.batch}']
    parts += [f's{args.img_size}'] if args.img_size else []
    parts += [f'c{args.caption_length}'] if args.caption_length else []
    parts += ['compile'] if args.compile else []
    parts += [f'mem{args.memory_budget:g}'] if args.compile and args.memory_budget is not None else []
    parts += ['ckpt'] if args.grad_checkpointing else []
    return '-'.join(parts)


# ----------------------------------------------------------------------------------------------- variants, tables
VARIANT_FLAGS: Dict[str, Callable[[str], List[str]]] = {
    'optimized': lambda t: [], 'fp32': lambda t: [], 'naive': lambda t: ['--naive'], 'bf16': lambda t: ['--amp'],
    'compile': lambda t: ['--compile'], 'ckpt': lambda t: ['--grad-checkpointing'],
    'b': lambda t: ['--batch', t[1:]], 's': lambda t: ['--img-size', t[1:]], 'c': lambda t: ['--caption-length', t[1:]],
    'mem': lambda t: ['--memory-budget', t[3:]], 'reuse': lambda t: ['--malloc', 'reuse'],
    'sysmalloc': lambda t: ['--malloc', 'system']}


def variant_flags(variant: str) -> List[str]:
    """Command-line flags of a variant name such as ``naive-bf16-b16``."""
    flags = []
    for token in variant.split('-'):
        key = _variant_key(token)
        if key not in VARIANT_FLAGS:
            raise ValueError(f'unknown variant token {token!r} in {variant!r}: use optimized, naive, fp32, bf16, '
                             f'compile, ckpt, b<batch>, s<image size>, c<caption length>, mem<compile memory budget>, '
                             f'reuse, sysmalloc')
        flags += VARIANT_FLAGS[key](token)
    return flags


def _variant_key(token: str) -> Optional[str]:
    """The :data:`VARIANT_FLAGS` key of a token: itself, or its prefix before an integer (``b16`` -> ``b``) or,
    for ``mem``, before a number (``mem0.8``)."""
    if token in VARIANT_FLAGS:
        return token
    if token[:1] in ('b', 's', 'c') and token[1:].isdigit():
        return token[:1]
    if token.startswith('mem') and token[3:].replace('.', '', 1).isdigit():
        return 'mem'
    return None


def common_flags(args) -> List[str]:
    """The command line of ``args`` without ``--variants``, ``--label`` and ``--json`` (each variant adds its own)."""
    flags = [args.config, '--batch', str(args.batch), '--steps', str(args.steps), '--warmup', str(args.warmup),
             '--breakdown-steps', str(args.breakdown_steps), '--device', args.device]
    for name in ('img_size', 'views', 'threads', 'caption_length', 'memory_budget', 'malloc'):
        if getattr(args, name):
            flags += ['--' + name.replace('_', '-'), str(getattr(args, name))]
    for name in ('amp', 'compile', 'naive', 'grad_checkpointing', 'ops'):
        if getattr(args, name):
            flags.append('--' + name.replace('_', '-'))
    return flags


def run_variants(args) -> List[dict]:
    """Each variant in a fresh process (its own RSS high-water mark), ``--rounds`` times interleaved (variant order
    repeated), so slow drifts of a shared machine hit every variant alike; returns one merged record per variant."""
    common = common_flags(args)
    runs = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for variant in args.variants:
                out = osp.join(tmp, f'{variant}-{round_}.json')
                cmd = [sys.executable, osp.abspath(__file__), *common, *variant_flags(variant), '--label', variant,
                       '--json', out]
                print(f'== {variant} (round {round_ + 1}/{args.rounds})', file=sys.stderr, flush=True)
                subprocess.run(cmd, check=True, stdout=sys.stderr)
                with open(out) as f:
                    runs[variant].append(json.load(f))
    return [merge_rounds(runs[v]) for v in args.variants]


def merge_rounds(records: List[dict]) -> dict:
    """One record from rounds of the same variant: the median over every timed step of every round, the rounds'
    medians in ``round_step_s``, the median peak and activation memory."""
    merged = dict(records[0])
    times = [t for r in records for t in r['step_s_all']]
    step, peak_flops = statistics.median(times), max(r['peak_flops'] for r in records)
    merged.update(step_s=step, step_s_all=times, rounds=len(records), round_step_s=[r['step_s'] for r in records],
                  images_per_s=merged['batch'] / step, flops_per_s=merged['flops'] / step, peak_flops=peak_flops,
                  utilisation=merged['flops'] / step / peak_flops)
    for key in ('peak_bytes', 'activation_bytes'):
        merged[key] = statistics.median(r[key] for r in records)
    if merged['breakdown']:
        merged['breakdown'] = {s: statistics.median(r['breakdown'][s] for r in records) for s in merged['breakdown']}
    if merged.get('ops'):
        merged['ops'] = dict(merged['ops'], **{k: statistics.median(r['ops'][k] for r in records)
                                               for k in ('step_s', 'flop_ops_s', 'other_ops_s')})
    return merged


def round_speedups(record: dict, ref: dict) -> List[float]:
    """Per-round speed-up of ``record`` over ``ref`` (rounds run back to back: the ratio within each round)."""
    return [a / b for a, b in zip(ref.get('round_step_s', []), record.get('round_step_s', []))]


def table(records: List[dict]) -> str:
    """Markdown table of the records, ratios against the first one, then the stage breakdown."""
    ref = records[0]
    rows = ['| variant | s/step | img/s | speed-up | per round | peak mem GB | activations GB | act. ratio | '
            'GFLOP/step | TFLOP/s | util. |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in records:
        per_round = ' '.join(f'{x:.2f}' for x in round_speedups(r, ref)) or '-'
        rows.append(f'| {r["label"]} | {r["step_s"]:.3f} | {r["images_per_s"]:.2f} | '
                    f'{r["images_per_s"] / ref["images_per_s"]:.2f}x | {per_round} | {r["peak_bytes"] / 1e9:.2f} | '
                    f'{r["activation_bytes"] / 1e9:.2f} | {r["activation_bytes"] / ref["activation_bytes"]:.2f} | '
                    f'{r["flops"] / 1e9:.0f} | {r["flops_per_s"] / 1e12:.3f} | {100 * r["utilisation"]:.1f} % |')
    stages = [s for s in STAGES if any(s in r['breakdown'] for r in records)]
    if stages:
        rows += ['', '| stage (s, % of step) | ' + ' | '.join(r['label'] for r in records) + ' |',
                 '|---|' + '---|' * len(records)]
        for s in stages:
            rows.append(f'| {s} | ' + ' | '.join(_stage_cell(r['breakdown'], s) for r in records) + ' |')
    if all(r.get('ops') for r in records):
        rows += ['', op_table(records)]
    return '\n'.join(rows)


def _stage_cell(breakdown: dict, stage: str) -> str:
    """Seconds of ``stage`` and its share of the breakdown's step (the sum of all its stages)."""
    if not breakdown:
        return '-'
    seconds = breakdown.get(stage, 0.0)
    return f'{seconds:.3f} ({100 * seconds / sum(breakdown.values()):.0f} %)'


def op_table(records: List[dict]) -> str:
    """Markdown table of the records' :func:`op_times`: FLOP-counted ops, other ops, the rest of the step (Python,
    autograd, the timer's own calls) and the slowest other ops."""
    def cell(seconds: float, ops: dict) -> str:
        return f'{seconds:.3f} ({100 * seconds / ops["step_s"]:.0f} %)'
    rows = ['| one step under the op timer (s, % of it) | ' + ' | '.join(r['label'] for r in records) + ' |',
            '|---|' + '---|' * len(records)]
    for name, get in (('matmuls, convolutions, attention (FLOP-counted ops)', lambda o: o['flop_ops_s']),
                      ('other ops', lambda o: o['other_ops_s']),
                      ('outside ops (Python, autograd, timer)', lambda o: o['step_s'] - o['flop_ops_s']
                       - o['other_ops_s'])):
        rows.append(f'| {name} | ' + ' | '.join(cell(get(r['ops']), r['ops']) for r in records) + ' |')
    tops = [', '.join(f'{n} {s:.3f}' for n, s, _ in r['ops']['top']) for r in records]
    reads = [str(r['ops'].get('host_reads', '-')) for r in records]
    return '\n'.join(rows + ['| slowest other ops | ' + ' | '.join(tops) + ' |',
                             '| host reads (a sync each on a GPU) | ' + ' | '.join(reads) + ' |'])


def describe(records: List[dict]) -> str:
    """One line on the machine and the settings the records share."""
    r = records[0]
    shared = [f'{r["device"]}, torch {r["torch"]}, {r["threads"]} threads']
    for key, text in (('config', '{}'), ('batch', 'batch {}'), ('img_size', '{} px views'),
                      ('steps', 'median of {} steps'), ('rounds', 'in each of {} rounds'),
                      ('warmup', 'after {} warm-up steps')):
        if key in r and all(other.get(key) == r[key] for other in records):
            shared.append(text.format(r[key]))
    return '; '.join(shared)


def parse_args(argv: List[str]):
    parser = argparse.ArgumentParser(description='Training-step benchmark of a pretraining config')
    parser.add_argument('config', nargs='?', help='config file (not needed with --report)')
    parser.add_argument('--batch', type=int, default=8, help='samples per step')
    parser.add_argument('--steps', type=int, default=5, help='timed steps (median)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first (the first also counts FLOPs)')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast (AutocastOptimWrapper)')
    parser.add_argument('--compile', action='store_true', help='torch.compile every transformer block and head')
    parser.add_argument('--memory-budget', type=float,
                        help='with --compile: fraction of the default saved activations the compiled regions keep')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--naive', action='store_true',
                        help="the reference's straightforward way (tools/analysis/naive.py)")
    parser.add_argument('--grad-checkpointing', action='store_true', help='checkpoint the encoders\' blocks')
    parser.add_argument('--img-size', type=int, help='view side (default: the pipeline\'s crop size)')
    parser.add_argument('--views', type=int, help='views per sample (default: the pipeline\'s MultiView count)')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--caption-length', type=int,
                        help='tokens per caption, SOT and EOT included, padding after (default: the context length)')
    parser.add_argument('--malloc', choices=['reuse', 'system'],
                        help='host memory between steps: glibc keeps freed memory for reuse, or its default (unmaps '
                        'large blocks); default: system with --naive, else the config\'s env_cfg.reuse_freed_memory')
    parser.add_argument('--breakdown-steps', type=int, default=2,
                        help='steps after the timed ones with the stages timed (stage_breakdown; 0: none)')
    parser.add_argument('--no-breakdown', dest='breakdown_steps', action='store_const', const=0,
                        help='do not time the stages (--breakdown-steps 0)')
    parser.add_argument('--ops', action='store_true',
                        help='time one more step op by op: matmul work against the other ops (OpTimer)')
    parser.add_argument('--label', help='row name (default: from the config and flags)')
    parser.add_argument('--json', help='write the record(s) here')
    parser.add_argument('--variants', nargs='+', help='run these variants, one process each, and tabulate them')
    parser.add_argument('--rounds', type=int, default=1,
                        help='with --variants: run the whole list this many times, interleaved, and merge')
    parser.add_argument('--report', nargs='+', metavar='JSON', help='tabulate saved records instead of running')
    args = parser.parse_args(argv)
    if not args.report and not args.config:
        parser.error('a CONFIG is needed unless --report is given')
    return args


def main(argv: Optional[List[str]] = None) -> List[dict]:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.report:
        records = []
        for path in args.report:
            with open(path) as f:
                loaded = json.load(f)
            records += loaded if isinstance(loaded, list) else [loaded]
    elif args.variants:
        records = run_variants(args)
    else:
        records = [run(args)]
    if args.json and not args.report:
        with open(args.json, 'w') as f:
            json.dump(records if args.variants else records[0], f, indent=1)
    print(describe(records) + '\n\n' + table(records) + '\n', flush=True)
    return records


if __name__ == '__main__':
    main()
