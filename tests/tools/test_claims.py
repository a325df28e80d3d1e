"""tools/benchmarks/claims.py: each verdict rule on hand-made seed values."""
import pytest

from tools.analysis.stats import Interval
from tools.benchmarks.claims import CLAIMS, FAILS, HOLDS, OPEN, Claim, claim_line, combine, verdict


@pytest.mark.parametrize('low, high, kind, margin, expected', [
    (0.5, 2.0, 'ahead', 0, HOLDS), (-2.0, -0.5, 'ahead', 0, FAILS), (-1.0, 1.0, 'ahead', 0, OPEN),
    (-1.5, 0.5, 'par', 2.0, HOLDS), (-5.0, -3.0, 'par', 2.0, FAILS), (-3.0, 0.5, 'par', 2.0, OPEN)])
def test_verdict(low, high, kind, margin, expected):
    assert verdict(Interval((low + high) / 2, (high - low) / 2, 3), kind, margin) == expected


def test_one_seed_is_inconclusive_and_any_failure_fails_the_claim():
    assert verdict(Interval(5.0, None, 1), 'ahead') == OPEN
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, OPEN]) == OPEN
    assert combine([HOLDS, FAILS, OPEN]) == FAILS
    assert combine([]) == OPEN


def test_claim_line_from_seed_values():
    claim = Claim('A is ahead of B', 'methods', 'a', 'b', ('probe mIoU', 'probe box AP'), 'ahead')
    values = {'a': {'probe mIoU': [30.0, 32.0, 31.0], 'probe box AP': [10.0, 11.0, 12.0]},
              'b': {'probe mIoU': [20.0, 21.0, 20.5], 'probe box AP': [10.5, 10.0, 12.5]}}
    line = claim_line(claim, values)
    assert line.startswith('- **A is ahead of B: inconclusive.** a - b, paired over 3 seed(s): probe mIoU +10.50')
    assert '(holds)' in line and 'probe box AP +0.00 ± ' in line
    assert claim_line(claim, {'a': values['a']}) == (
        '- **A is ahead of B: not measured** (rows a and b of the methods suite).')
    values['b']['probe box AP'] = None
    assert 'probe box AP: not measured' in claim_line(claim, values)


def test_claim_line_gives_each_rows_margin_over_the_random_floor():
    claim = Claim('A is ahead of B', 'methods', 'a', 'b', ('probe mIoU',), 'ahead')
    values = {'a': {'probe mIoU': [30.0, 32.0, 31.0]}, 'b': {'probe mIoU': [20.0, 21.0, 20.5]},
              'random': {'probe mIoU': [19.0, 21.0, 20.0]}}
    line = claim_line(claim, values)
    assert 'Over random init (Welch half-widths): probe mIoU a ' in line and ', b 0.' in line
    assert line.endswith('the probe barely tells it from random init.')
    values['b']['probe mIoU'] = [28.0, 29.0, 28.5]
    assert 'barely' not in claim_line(claim, values)
    del values['random']
    assert 'random init' not in claim_line(claim, values)


def test_every_claim_names_rows_of_its_suite():
    from tools.benchmarks.suites import build_suite
    for claim in CLAIMS:
        names = {r.name for r in build_suite(claim.suite).rows}
        assert {claim.a, claim.b} <= names, claim.text


def test_a_failed_claim_points_to_its_evidence():
    claim = Claim('A is on par with B', 'methods', 'a', 'b', ('retrieval/i2t_R@1',), 'par', evidence='see E1')
    values = {'a': {'retrieval/i2t_R@1': [1.0, 1.2, 0.9]}, 'b': {'retrieval/i2t_R@1': [7.0, 7.5, 7.2]}}
    assert claim_line(claim, values).endswith('(does not hold). Why: see E1.')
