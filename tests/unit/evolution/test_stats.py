"""The gate's paired statistics, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from o.evolution import stats


def test_sign_test_matches_the_binomial_tail() -> None:
    assert stats.sign_test_p(0, 0) == 1.0
    assert stats.sign_test_p(5, 0) == 1 / 32
    assert stats.sign_test_p(0, 5) == 1.0
    # 27 better, 7 worse: the tail of Binomial(34, 1/2) from 27
    assert stats.sign_test_p(27, 7) == pytest.approx(sum(math.comb(34, k) for k in range(27, 35)) / 2**34)
    assert stats.sign_test_p(3, 3) == pytest.approx(42 / 64)


def test_paired_evidence_counts_wins_losses_and_ties() -> None:
    evidence = stats.paired([0.5, 1.0, 0.0, 0.2], [1.0, 1.0, 1.0, 0.1])
    assert (evidence.cases, evidence.wins, evidence.losses) == (4, 2, 1)
    assert evidence.mean_delta == pytest.approx((0.5 + 0 + 1.0 - 0.1) / 4)
    assert evidence.ci_low < evidence.mean_delta < evidence.ci_high
    assert evidence.p_value == pytest.approx(stats.sign_test_p(2, 1))
    assert evidence.as_dict()["ties"] == 1
    with pytest.raises(ValueError):
        stats.paired([1.0], [1.0, 0.0])


def test_interval_narrows_with_more_cases() -> None:
    few = stats.mean_interval([1.0, 0.0] * 4)
    many = stats.mean_interval([1.0, 0.0] * 40)
    assert few[0] == many[0] == 0.5
    assert many[2] - many[1] < few[2] - few[1]


def test_guards_count_cases_beyond_the_limit() -> None:
    errors = stats.difference_guard("error_rate", [0.0] * 6, [1.0] * 6, 0.0, 0.05)
    assert (errors.above, errors.p_value, errors.failed) == (6, 1 / 64, True)
    assert errors.estimate == 1.0
    tolerated = stats.difference_guard("error_rate", [0.0] * 6, [0.5] * 6, 0.5, 0.05)
    assert tolerated.above == 0 and not tolerated.failed
    slow = stats.ratio_guard("latency", [100.0] * 8, [400.0] * 8, 2.0, 0.05, min_delta=250.0)
    assert slow.above == 8 and slow.failed and slow.estimate == pytest.approx(401 / 101)
    # the same ratio, too few milliseconds to matter
    fast = stats.ratio_guard("latency", [3.0] * 8, [12.0] * 8, 2.0, 0.05, min_delta=250.0)
    assert fast.above == 0 and not fast.failed
    assert set(slow.as_dict()) >= {"test", "cases", "ci95", "p_value", "alpha", "passed"}


def _enumerated_p(canary: list[float], base: list[float]) -> float:
    """P(U >= observed) over every way of splitting the pooled values: the exact permutation test."""
    from itertools import combinations

    pooled = canary + base
    observed = stats._u_statistic(canary, base)
    splits = list(combinations(range(len(pooled)), len(canary)))
    hits = 0
    for chosen in splits:
        c = [pooled[i] for i in chosen]
        b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        hits += stats._u_statistic(c, b) >= observed - 1e-9
    return hits / len(splits)


def test_mann_whitney_exact_against_known_values() -> None:
    # every canary value above every baseline value: 1 arrangement of C(6, 3) = 20
    top = stats.mann_whitney([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])
    assert (top.u, top.p_value, top.method) == (9.0, 1 / 20, "exact")
    assert stats.mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]).p_value == 1.0
    # U = 3 of 4 pairs for sizes (2, 2): arrangements with U >= 3 are 2 of 6
    assert stats.mann_whitney([2.0, 4.0], [1.0, 3.0]).p_value == pytest.approx(2 / 6)
    for canary, base in (([3.1, 7.2, 5.5, 9.0], [1.2, 4.4, 6.1, 2.0, 8.3]), ([0.5, 0.7], [0.1, 0.2, 0.9, 0.3])):
        assert stats.mann_whitney(canary, base).p_value == pytest.approx(_enumerated_p(canary, base))


def test_mann_whitney_normal_approximation_with_ties() -> None:
    # Ties force the normal approximation; it stays close to the exact permutation p on a moderate sample
    canary = [1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0]
    base = [0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 0.0, 1.0]
    approx = stats.mann_whitney(canary, base)
    assert approx.method == "normal"
    assert approx.p_value == pytest.approx(_enumerated_p(canary, base), abs=0.01)
    # n = m = 10 with no overlap: one arrangement of C(20, 10)
    big = stats.mann_whitney([float(i) for i in range(100, 110)], [float(i) for i in range(10)])
    assert big.method == "exact" and big.p_value == pytest.approx(1 / math.comb(20, 10))
    # two values only: the exact hypergeometric tail (Fisher's test), equal to the permutation p
    flags = stats.mann_whitney([1.0, 1.0, 0.0, 0.0, 0.0], [0.0] * 6 + [1.0])
    assert flags.method == "exact"
    assert flags.p_value == pytest.approx(_enumerated_p([1.0, 1.0, 0.0, 0.0, 0.0], [0.0] * 6 + [1.0]))
    # 2 of 8 canary turns failed, none of 40 baseline turns: C(8, 2) / C(48, 2)
    assert stats.mann_whitney([1.0] * 2 + [0.0] * 6, [0.0] * 40).p_value == pytest.approx(28 / 1128)
    assert stats.mann_whitney([], [1.0]).p_value == 1.0
    assert stats.mann_whitney([1.0] * 5, [1.0] * 5).p_value == 1.0
    # the textbook normal form: n = m = 30 with no overlap, z = (900 - 450 - 0.5) / sqrt(30 * 30 * 61 / 12)
    far = stats.mann_whitney([float(i) for i in range(100, 130)], [float(i) for i in range(30)])
    z_far = (900 - 450 - 0.5) / math.sqrt(30 * 30 * 61 / 12)
    assert far.method == "normal" and far.p_value == pytest.approx(0.5 * math.erfc(z_far / math.sqrt(2)))
    tied_far = stats.mann_whitney([100.0] * 30, [float(i) for i in range(30)])
    z = (900 - 450 - 0.5) / math.sqrt(900 / 12 * (61 - (30**3 - 30) / (60 * 59)))
    assert tied_far.method == "normal" and tied_far.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
