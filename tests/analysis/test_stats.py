"""tools/analysis/stats.py: t-intervals of means and of paired differences, against plain computations."""
import math
import statistics

import pytest

from tools.analysis.stats import paired_interval, t_interval, welch_interval


def test_t_interval_of_three_values():
    values = [10.0, 12.0, 14.0]
    got = t_interval(values)
    # t(0.975, 2) = 4.302653; s = 2
    assert got.mean == pytest.approx(12.0)
    assert got.half == pytest.approx(4.302653 * statistics.stdev(values) / math.sqrt(3), rel=1e-6)
    assert (got.low, got.high, got.n) == (pytest.approx(12 - got.half), pytest.approx(12 + got.half), 3)
    assert got.format() == f'12.00 ± {got.half:.2f}'


def test_one_value_has_no_interval():
    got = t_interval([7.5])
    assert (got.mean, got.half, got.low, got.significant) == (7.5, None, None, False)
    assert got.format(signed=True) == '+7.50'
    with pytest.raises(ValueError, match='no values'):
        t_interval([])


def test_paired_interval_cancels_the_shared_seed_variation():
    """Two rows that move together over seeds: their unpaired intervals overlap, the paired one excludes 0."""
    a, b = [20.0, 30.0, 40.0], [19.0, 29.2, 38.9]
    assert t_interval(a).low < t_interval(b).high
    diff = paired_interval(a, b)
    assert diff.mean == pytest.approx(statistics.mean([1.0, 0.8, 1.1]))
    assert diff.significant and diff.low > 0
    with pytest.raises(ValueError, match='one value of each side per seed'):
        paired_interval(a, b[:2])


def test_welch_interval_against_its_formula():
    a, b = [9.3, 8.6, 10.2], [6.2, 5.3, 3.8, 4.9]
    va, vb = statistics.variance(a) / 3, statistics.variance(b) / 4
    dof = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    got = welch_interval(a, b)
    assert got.mean == pytest.approx(statistics.mean(a) - statistics.mean(b))
    assert got.half == pytest.approx(scipy_t(dof) * math.sqrt(va + vb))
    assert welch_interval([1.0], [2.0, 3.0]).half is None


def scipy_t(dof: float) -> float:
    from scipy import stats
    return stats.t.ppf(0.975, dof)
