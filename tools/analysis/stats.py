"""Seed statistics of the benchmark tables: 95 % t-intervals of means and of paired differences.

A cell over seeds is ``mean ± h`` with h = t(0.975, n - 1) * s / sqrt(n), the half-width of the t-interval of the
mean (s: the sample standard deviation over the n seeds). A paired comparison of two rows takes the difference seed by
seed (same seed, hence the same data order and downstream seed) and gives that difference's interval, so the shared
seed-to-seed variation cancels. Rows that share nothing by seed (a pretrained encoder against random inits) get
Welch's unpaired interval instead. One seed gives a mean and no interval.
"""
import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

from scipy import stats

LEVEL = 0.95
CLEAR_MARGIN = 3.0  # a row clears another (a pretrained encoder its random floor) by more half-widths than this


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and the half-width of its 95 % t-interval (None for fewer than two values)."""

    mean: float
    half: Optional[float]
    n: int

    @property
    def low(self) -> Optional[float]:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> Optional[float]:
        return None if self.half is None else self.mean + self.half

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 0."""
        return self.half is not None and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 2, signed: bool = False) -> str:
        """``'12.30 ± 0.45'`` (``'+1.20 ± 0.45'`` when signed), the bare mean without an interval."""
        mean = f'{self.mean:+.{digits}f}' if signed else f'{self.mean:.{digits}f}'
        return mean if self.half is None else f'{mean} ± {self.half:.{digits}f}'


def t_interval(values: Sequence[float]) -> Interval:
    """The mean of ``values`` and the half-width of its 95 % t-interval."""
    if not values:
        raise ValueError('no values to average')
    n = len(values)
    if n == 1:
        return Interval(float(values[0]), None, 1)
    quantile = stats.t.ppf((1 + LEVEL) / 2, n - 1)
    return Interval(statistics.mean(values), quantile * statistics.stdev(values) / math.sqrt(n), n)


def paired_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """The interval of the mean paired difference ``a - b`` (one pair per seed)."""
    if len(a) != len(b):
        raise ValueError(f'a paired comparison needs one value of each side per seed, got {len(a)} and {len(b)}')
    return t_interval([x - y for x, y in zip(a, b)])


def welch_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """The interval of ``mean(a) - mean(b)`` for independent samples (Welch: unequal variances, Welch-Satterthwaite
    degrees of freedom); no interval unless both sides have two values."""
    diff = statistics.mean(a) - statistics.mean(b)
    if min(len(a), len(b)) < 2:
        return Interval(diff, None, min(len(a), len(b)))
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return Interval(diff, 0.0, min(len(a), len(b)))
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return Interval(diff, stats.t.ppf((1 + LEVEL) / 2, dof) * math.sqrt(va + vb), min(len(a), len(b)))


def margin(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """How far ``mean(a) - mean(b)`` lies from 0 in half-widths of Welch's interval (None without an interval)."""
    diff = welch_interval(a, b)
    return diff.mean / diff.half if diff.half else None
