"""The paper's claims, each tested on the synthetic-world tables with a paired interval over seeds.

A claim compares two rows of a suite (``a`` against ``b``) on some metrics. For every metric the paired difference
a - b over seeds gets its 95 % t-interval (tools/analysis/stats.py), and:

- ``ahead`` (a is better): holds when the interval lies above 0, does not hold when it lies below 0, inconclusive
  when it holds 0;
- ``par`` (a is on par with b or better, within a stated margin d): holds when the interval lies above -d, does not
  hold when it lies below -d, inconclusive otherwise.

A claim holds when it holds on every metric, does not hold when it fails on one, and is inconclusive otherwise (or
when a row or metric was not measured, or with one seed).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tools.analysis.stats import CLEAR_MARGIN, Interval, margin, paired_interval
from tools.benchmarks.suites import RANDOM

HOLDS, FAILS, OPEN = 'holds', 'does not hold', 'inconclusive'
# Non-inferiority margins of the "on par" claims, in the metric's points: a few points of top-1 or R@1 (the seed
# spread of one tiny method is 1-3 points), more for R@10, one point on the dense metrics.
MARGINS = {'zero-shot/top1': 3.0, 'retrieval/i2t_R@1': 2.0, 'retrieval/t2i_R@1': 2.0, 'retrieval/i2t_R@10': 5.0,
           'retrieval/t2i_R@10': 5.0, 'probe mIoU': 1.0, 'probe box AP': 1.0}
SEGMENTATION = ('probe mIoU', 'probe mIoU small')
DETECTION = ('probe box AP', 'probe box AP small')
DIAGNOSTICS = 'the recipe diagnostics (E1 views, E2 stem, E3 self-supervised terms) show which recipe part costs it'
ZERO_SHOT_RETRIEVAL = ('zero-shot/top1', 'retrieval/i2t_R@1', 'retrieval/t2i_R@1', 'retrieval/i2t_R@10',
                       'retrieval/t2i_R@10')


@dataclass(frozen=True)
class Claim:
    """``text``: row ``a`` against row ``b`` of ``suite`` on ``metrics``, of ``kind`` 'ahead' or 'par'; ``evidence``:
    where the report shows why, when the claim does not hold."""

    text: str
    suite: str
    a: str
    b: str
    metrics: Tuple[str, ...]
    kind: str
    evidence: str = ''


CLAIMS = (
    Claim('DetailCLIP is ahead of CLIP on segmentation', 'methods', 'detailclip', 'clip', SEGMENTATION, 'ahead'),
    Claim('DetailCLIP is ahead of CLIP on detection', 'methods', 'detailclip', 'clip', DETECTION, 'ahead'),
    Claim('DetailCLIP is on par with CLIP on zero-shot and retrieval', 'methods', 'detailclip', 'clip',
          ZERO_SHOT_RETRIEVAL, 'par', evidence=DIAGNOSTICS),
    Claim('A-CLIP is on par with CLIP on zero-shot and retrieval', 'methods', 'aclip', 'clip', ZERO_SHOT_RETRIEVAL,
          'par', evidence=DIAGNOSTICS),
    Claim('The pixel term adds to dense quality', 'ablations', 'detailclip', 'no-pixel',
          ('probe mIoU', 'probe box AP'), 'ahead'),
    Claim('The iBOT patch term adds to dense quality', 'ablations', 'detailclip', 'no-ibot-patch',
          ('probe mIoU', 'probe box AP'), 'ahead'),
    Claim('The iBOT CLS term adds to dense quality', 'ablations', 'detailclip', 'no-ibot-cls',
          ('probe mIoU', 'probe box AP'), 'ahead'),
    Claim('Attention masking is at least as good as random masking', 'ablations', 'detailclip', 'random-mask',
          ('probe mIoU', 'probe box AP'), 'par'),
)


def verdict(diff: Interval, kind: str, margin: float = 0.0) -> str:
    """The verdict of one metric's paired difference ``diff`` (a - b) for a claim of ``kind``."""
    if diff.half is None:
        return OPEN
    floor = 0.0 if kind == 'ahead' else -margin
    if diff.low > floor:
        return HOLDS
    return FAILS if diff.high < floor else OPEN


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its metrics' verdicts."""
    if FAILS in verdicts:
        return FAILS
    return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else OPEN


def metric_verdicts(claim: Claim, values: Dict[str, Dict[str, List[Optional[float]]]]) -> List[Tuple[str, object]]:
    """``(metric, (diff, verdict))`` per metric, or ``(metric, None)`` where either row lacks it.

    Args:
        claim: The claim.
        values: ``values[row][metric]``: one value per seed (None where a run lacks the metric).
    """
    found = []
    for metric in claim.metrics:
        a, b = (values.get(row, {}).get(metric) for row in (claim.a, claim.b))
        if not a or not b or None in a or None in b:
            found.append((metric, None))
            continue
        diff = paired_interval(a, b)
        found.append((metric, (diff, verdict(diff, claim.kind, MARGINS.get(metric, 0.0)))))
    return found


def claim_line(claim: Claim, values: Dict[str, Dict[str, List[Optional[float]]]]) -> str:
    """One Markdown bullet: the claim, its verdict, and each metric's paired difference with its verdict."""
    found = metric_verdicts(claim, values)
    if not any(result for _, result in found):
        return f'- **{claim.text}: not measured** (rows {claim.a} and {claim.b} of the {claim.suite} suite).'
    overall = combine([v[1] if v else OPEN for _, v in found])
    parts = []
    for metric, result in found:
        if result is None:
            parts.append(f'{metric}: not measured')
            continue
        diff, said = result
        margin = f', margin {MARGINS.get(metric, 0.0):g}' if claim.kind == 'par' else ''
        parts.append(f'{metric} {diff.format(signed=True)}{margin} ({said})')
    seeds = max(r[0].n for _, r in found if r)
    why = f' Why: {claim.evidence}.' if overall == FAILS and claim.evidence else ''
    return (f'- **{claim.text}: {overall}.** {claim.a} - {claim.b}, paired over {seeds} seed(s): '
            + '; '.join(parts) + '.' + why + floor_note(claim, values))


def floor_note(claim: Claim, values: Dict[str, Dict[str, List[Optional[float]]]]) -> str:
    """Each row's margin over the random floor on the claim's metrics that the suite probed at random init, with a
    warning when a row does not clear it: rows that the probe cannot tell from random init differ by noise."""
    floor, parts, unclear = values.get(RANDOM, {}), [], False
    for metric in claim.metrics:
        found = [(row, floor_margin(values.get(row, {}).get(metric), floor.get(metric))) for row in (claim.a, claim.b)]
        found = [(row, m) for row, m in found if m is not None]
        unclear |= any(m <= CLEAR_MARGIN for _, m in found)
        if found:
            parts.append(f'{metric} ' + ', '.join(f'{row} {m:.1f}x' for row, m in found))
    if not parts:
        return ''
    warning = (f' A row within {CLEAR_MARGIN:g} half-widths of the floor: the probe barely tells it from random init.'
               if unclear else '')
    return f' Over random init (Welch half-widths): {"; ".join(parts)}.{warning}'


def floor_margin(row: Optional[List[Optional[float]]], floor: Optional[List[Optional[float]]]) -> Optional[float]:
    """:func:`~tools.analysis.stats.margin` of a row's seed values over the floor's, None where either is missing."""
    return margin(row, floor) if row and floor and None not in row + floor else None
