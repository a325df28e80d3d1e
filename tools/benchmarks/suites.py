"""The rows of the synthetic-world tables (tools/benchmarks/synthetic_table.py), one suite per table.

A row is a tiny synthetic-world config plus ``--cfg-options``: the methods table's rows are the methods' own configs,
the ablation table's the DetailCLIP ablation configs, and the recipe diagnostics change one setting of a method at a
time (views, stem, self-supervised terms). Every row of a suite trains at the suite run's one budget (epochs, batch,
image size, seeds). The row named ``random`` is not trained: its encoder is the first row's architecture at random
init, the floor of the dense tasks.
"""
import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RANDOM = 'random'
ABLATIONS = 'configs/ablations/detailclip/detailclip_vit-tiny-p8_{}_synthetic-world.py'


@dataclass(frozen=True)
class Row:
    """One row: ``name``, its pretraining ``config`` and ``options``, the row its paired differences are taken
    against (``baseline``) and what it changes (``note``, for the docs)."""

    name: str
    config: str
    options: Tuple[str, ...] = ()
    baseline: Optional[str] = None
    note: str = ''

    @property
    def trained(self) -> bool:
        return self.name != RANDOM


@dataclass(frozen=True)
class Suite:
    """A table: its title, rows and the experiments' description."""

    title: str
    rows: Tuple[Row, ...]
    about: str = ''

    def row(self, name: str) -> Row:
        found = [r for r in self.rows if r.name == name]
        if not found:
            raise KeyError(f'no row {name!r}: the rows are {[r.name for r in self.rows]}')
        return found[0]


def method_config(method: str) -> str:
    """The method's tiny synthetic-world config (relative to the repository root)."""
    found = sorted(glob.glob(osp.join(ROOT, 'configs', method, '*vit-tiny*synthetic-world.py')))
    if len(found) != 1:
        raise SystemExit(f'configs/{method}/ holds {len(found)} *vit-tiny*synthetic-world.py configs, not one: '
                         'name a method with exactly one tiny synthetic-world config')
    return osp.relpath(found[0], ROOT)


def random_row(like: str) -> Row:
    return Row(RANDOM, method_config(like), baseline=None, note=f'{like}\'s encoder at random init (dense floor)')


def methods_suite() -> Suite:
    methods = ('clip', 'slip', 'maskclip', 'aclip', 'detailclip')
    rows = [Row(m, method_config(m), baseline=None if m == methods[0] else methods[0]) for m in methods]
    return Suite('Methods', (*rows, random_row(methods[0])),
                 about='The paper\'s comparison in miniature: each method\'s tiny recipe at one budget.')


def ablations_suite() -> Suite:
    """DetailCLIP with each term off and with random instead of attention masking (the paper's ablation table)."""
    changes = {'no-pixel': 'pixel reconstruction off', 'no-ibot-patch': 'iBOT patch term off',
               'no-ibot-cls': 'iBOT CLS term off', 'random-mask': 'random token removal (same ratio)'}
    rows = [Row(name, ABLATIONS.format(name), baseline='detailclip', note=note) for name, note in changes.items()]
    return Suite('DetailCLIP ablations', (Row('detailclip', method_config('detailclip')), *rows),
                 about='Each DetailCLIP term off, and random against attention masking.')


# The tiny DetailCLIP / A-CLIP recipes as they were before the recipe fixes: the whole conv stem frozen at random init
# and the paper's base EMA momentum 0.996 whatever the run length.
BEFORE = ('model.image_encoder.freeze_patch_embed=stem', 'default_hooks.ema.half_life_epochs=None',
          'default_hooks.ema.momentum=0.996')
VIEW = 'train_dataloader.dataset.pipeline.1'  # the view transform of every tiny pipeline (after loading)


def before_and_fixed_rows(method: str, label: str, e1: Tuple[str, str, str], ssl_weights: Tuple[str, ...],
                          ssl_terms: str) -> List[Row]:
    """A teacher method's diagnostics: its tiny recipe before the fixes (``<method>-before``); E1 (``e1``: row name,
    option, what it changes), E2 (the stem trains) and E3 (the objectives' ``ssl_weights`` 0: only the CLIP term),
    each one change against it; the fixed recipe last, against it too."""
    config, before = method_config(method), f'{method}-before'
    name, option, note = e1
    clip_only = tuple(f'model.objectives.{weight}=0.0' for weight in ssl_weights)
    return [
        Row(before, config, BEFORE, note=f'{label}, the earlier tiny recipe (stem frozen, m 0.996)'),
        Row(f'{before}+{name}', config, (*BEFORE, option), before, f'E1: {note}'),
        Row(f'{before}+trainable-stem', config, (*BEFORE[1:], 'model.image_encoder.freeze_patch_embed=False'), before,
            'E2: the stem trains'),
        Row(f'{before}+clip-only', config, (*BEFORE, *clip_only), before,
            f'E3: only the CLIP term ({ssl_terms} weights 0)'),
        Row(method, config, (), before, 'the fixed tiny recipe: projection frozen, half-life EMA'),
    ]


def diagnostics_suite() -> Suite:
    """E1-E3 of the recipe review: which recipe differences explain the retrieval gap of DetailCLIP and A-CLIP."""
    clip = method_config('clip')
    rows = [
        Row('clip', clip, note='CLIP, its recipe'),
        Row('clip+detailclip-views', clip, (f'{VIEW}.views=[detailclip]', f'{VIEW}.num_repeats=2',
                                            'model.objectives.clip.views=[0,1]'),
            'clip', 'E1: CLIP on two DetailCLIP views (crops from 14 %, colour jitter, grayscale, solarize)'),
        Row('clip+frozen-stem', clip, ('model.image_encoder.freeze_patch_embed=stem',), 'clip',
            'E2: CLIP with its whole conv stem frozen at random init'),
        Row('flip', method_config('flip'), (), 'clip', 'E3: FLIP, token removal alone (50 % random)'),
        *before_and_fixed_rows('detailclip', 'DetailCLIP',
                               ('clip-views', f'{VIEW}.views=[clip]', 'two CLIP views (crops from 50 %, no colour)'),
                               ('mae.weight', 'ibot.cls_weight', 'ibot.patch_weight'), 'pixel, iBOT patch and CLS'),
        *before_and_fixed_rows('aclip', 'A-CLIP',
                               ('no-photometric', f'{VIEW}.student_recipe=[]',
                                'no colour jitter, grayscale, blur or solarize on the student crops'),
                               ('simclr.weight', 'byol.weight'), 'SimCLR and BYOL'),
    ]
    return Suite('Recipe diagnostics (E1-E3)', tuple(rows),
                 about='One recipe difference at a time, each against the row it changes.')


SUITES: Dict[str, callable] = dict(methods=methods_suite, ablations=ablations_suite, diagnostics=diagnostics_suite)


def build_suite(name: str, rows: Optional[List[str]] = None) -> Suite:
    """The suite ``name``, restricted to ``rows`` (in the suite's order, baselines kept) when given."""
    if name not in SUITES:
        raise SystemExit(f'unknown suite {name!r}: use one of {sorted(SUITES)}')
    suite = SUITES[name]()
    if not rows:
        return suite
    unknown = set(rows) - {r.name for r in suite.rows}
    if unknown:
        raise SystemExit(f'unknown rows {sorted(unknown)} of suite {name!r}: use {[r.name for r in suite.rows]}')
    wanted = set(rows) | {suite.row(r).baseline for r in rows} - {None}
    return Suite(suite.title, tuple(r for r in suite.rows if r.name in wanted), suite.about)
