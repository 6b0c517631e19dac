"""The gate's statistics: is a candidate better than the current revision on paired replays, and how sure?

Each evaluation case is replayed on both revisions (the same input, possibly several samples each),
which makes the scores *paired*: the question is whether the per-case differences lean positive by
more than chance would. The test is the exact one-sided sign test on the cases where the two differ
(for pass/fail scores this is the exact McNemar test): under "no better", each differing case is
a coin flip, so ``p = P(Binomial(wins + losses, 1/2) >= wins)``. It is exact at any suite size, needs
no assumption about how scores are distributed, and its false-promotion rate is at most ``alpha``
whatever the number of cases — a fixed threshold on the mean difference cannot promise that (on
8 cases it lets chance wins through; on 80 a "no regression at all" rule blocks real improvements).
The interval on the mean difference is reported with every decision so an owner can see the effect
size, not only the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# differences smaller than this are ties (scores are floats combined from checks and a judge)
TIE = 1e-9
# two-sided 95% normal quantile, for the reported interval
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class PairedEvidence:
    """What the paired replays say about candidate minus current."""

    cases: int  # paired cases
    wins: int  # cases where the candidate scored higher
    losses: int  # cases where it scored lower
    mean_delta: float
    ci_low: float
    ci_high: float
    p_value: float  # one-sided: "the candidate is no better"

    def as_dict(self) -> dict[str, object]:
        return {
            "test": "exact one-sided sign test on paired cases (McNemar for pass/fail)",
            "cases": self.cases,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.cases - self.wins - self.losses,
            "mean_delta": round(self.mean_delta, 4),
            "ci95": [round(self.ci_low, 4), round(self.ci_high, 4)],
            "p_value": round(self.p_value, 6),
        }


def sign_test_p(wins: int, losses: int) -> float:
    """P(at least ``wins`` heads in ``wins + losses`` fair coin flips): the one-sided exact sign test."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def mean_interval(deltas: list[float]) -> tuple[float, float, float]:
    """The mean of ``deltas`` and a normal-approximation 95% interval around it."""
    n = len(deltas)
    if n == 0:
        return 0.0, 0.0, 0.0
    mean = sum(deltas) / n
    if n == 1:
        return mean, mean, mean
    variance = sum((d - mean) ** 2 for d in deltas) / (n - 1)
    half = _Z95 * math.sqrt(variance / n)
    return mean, mean - half, mean + half


def paired(current: list[float], candidate: list[float]) -> PairedEvidence:
    """The evidence of paired per-case scores (same order, same cases)."""
    if len(current) != len(candidate):
        raise ValueError(f"{len(current)} current scores but {len(candidate)} candidate scores")
    deltas = [b - a for a, b in zip(current, candidate, strict=True)]
    wins = sum(d > TIE for d in deltas)
    losses = sum(d < -TIE for d in deltas)
    mean, low, high = mean_interval(deltas)
    return PairedEvidence(len(deltas), wins, losses, mean, low, high, sign_test_p(wins, losses))


# --- guards: is the candidate worse than the current revision by more than a tolerance? ------------------


@dataclass(frozen=True)
class GuardEvidence:
    """What paired replays say about one guard (errors, latency, cost): how many cases exceed its limit.

    The test is the exact one-sided sign test of "the median case exceeds the limit" (the same test as the
    score's, pointed the other way): each case is above or below the limit, and under "the candidate is
    within the limit" exceeding is at most a coin flip. The guard refuses only when the excess is beyond
    chance (``p <= alpha``), so a handful of noisy cases neither block a sound candidate nor hide a bad one.
    ``estimate`` and its 95% interval say how large the effect is (a difference for errors, a geometric-mean
    ratio for latency and cost).
    """

    name: str
    cases: int
    above: int  # cases beyond the limit
    estimate: float
    ci_low: float
    ci_high: float
    limit: float
    p_value: float
    alpha: float

    @property
    def failed(self) -> bool:
        return self.above > 0 and self.p_value <= self.alpha

    def as_dict(self) -> dict[str, object]:
        return {
            "test": "exact one-sided sign test: the median case exceeds the limit",
            "cases": self.cases,
            "above_limit": self.above,
            "estimate": round(self.estimate, 4),
            "ci95": [round(self.ci_low, 4), round(self.ci_high, 4)],
            "limit": self.limit,
            "p_value": round(self.p_value, 6),
            "alpha": self.alpha,
            "passed": not self.failed,
        }


def difference_guard(
    name: str, current: list[float], candidate: list[float], limit: float, alpha: float
) -> GuardEvidence:
    """Guard on a paired difference (candidate minus current, e.g. error rate): a case exceeds when its
    difference is above ``limit``."""
    deltas = [b - a for a, b in zip(current, candidate, strict=True)]
    above = sum(d > limit + TIE for d in deltas)
    mean, low, high = mean_interval(deltas)
    n = len(deltas)
    return GuardEvidence(name, n, above, mean, low, high, limit, sign_test_p(above, n - above), alpha)


def ratio_guard(
    name: str, current: list[float], candidate: list[float], limit: float, alpha: float, min_delta: float = 0.0
) -> GuardEvidence:
    """Guard on a paired ratio (candidate over current, e.g. latency or tokens): a case exceeds when its ratio
    is above ``limit`` and the absolute difference is at least ``min_delta``. The estimate is the
    geometric mean ratio (values offset by 1 so that a zero is not infinitely far)."""
    above = sum(a > 0 and b / a > limit and b - a >= min_delta for a, b in zip(current, candidate, strict=True))
    logs = [math.log((b + 1) / (a + 1)) for a, b in zip(current, candidate, strict=True)]
    mean, low, high = mean_interval(logs)
    n = len(logs)
    return GuardEvidence(
        name, n, above, math.exp(mean), math.exp(low), math.exp(high), limit, sign_test_p(above, n - above), alpha
    )


# --- live evidence: is the canary's sample worse than the baseline's? -------------------------------------


@dataclass(frozen=True)
class RankEvidence:
    """The Mann-Whitney U test of "the canary's values tend to be larger than the baseline's" (one-sided)."""

    n_canary: int
    n_base: int
    u: float  # U of the canary: pairs where it is larger, ties counting one half
    p_value: float
    method: str  # "exact" or "normal"

    def as_dict(self) -> dict[str, object]:
        return {
            "test": f"Mann-Whitney U, one-sided ({self.method})",
            "n_canary": self.n_canary,
            "n_base": self.n_base,
            "u": self.u,
            "p_value": round(self.p_value, 6),
        }


# exact null distribution up to this many (canary x baseline) pairs, when there are no ties
EXACT_PAIRS = 400


def _u_statistic(canary: list[float], base: list[float]) -> float:
    """Pairs where the canary's value is larger (ties one half), from the canary's rank sum (midranks)."""
    pooled = sorted([(v, 1) for v in canary] + [(v, 0) for v in base])
    rank_sum, i = 0.0, 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        midrank = (i + 1 + j) / 2  # ranks i+1 .. j share their mean
        rank_sum += midrank * sum(flag for _, flag in pooled[i:j])
        i = j
    n = len(canary)
    return rank_sum - n * (n + 1) / 2


def _exact_upper_tail(u: float, n: int, m: int) -> float:
    """P(U >= u) under the null without ties: counts of rank arrangements by U (the classic recurrence)."""
    # counts[j][k]: arrangements of j canary and k baseline values, as a polynomial in U
    prev: list[list[int]] = [[1] for _ in range(m + 1)]
    for _ in range(n):
        cur: list[list[int]] = [[1]]
        for k in range(1, m + 1):
            # the largest value is a canary one (adds k to U) or a baseline one (adds 0)
            a, b = prev[k], cur[k - 1]
            size = max(len(a) + k, len(b))
            poly = [0] * size
            for i, c in enumerate(a):
                poly[i + k] += c
            for i, c in enumerate(b):
                poly[i] += c
            cur.append(poly)
        prev = cur
    dist = prev[m]
    total = sum(dist)
    return sum(c for i, c in enumerate(dist) if i >= u - TIE) / total


def mann_whitney(canary: list[float], base: list[float]) -> RankEvidence:
    """One-sided Mann-Whitney U: p of a U at least this large if canary and baseline came from one distribution.

    Exact for two-valued samples (error flags: the hypergeometric tail) and for small samples without ties;
    otherwise the normal approximation with the tie correction and
    a continuity correction (the textbook form, as Kayenta's canary judge uses it)."""
    n, m = len(canary), len(base)
    if n == 0 or m == 0:
        return RankEvidence(n, m, 0.0, 1.0, "none")
    u = _u_statistic(canary, base)
    values = canary + base
    levels = sorted(set(values))
    if len(levels) == 2:
        # two values only (failed or not): the exact test is the hypergeometric tail (Fisher's), at any size
        high = sum(v == levels[1] for v in values)
        k = sum(v == levels[1] for v in canary)
        tail = sum(math.comb(high, i) * math.comb(n + m - high, n - i) for i in range(k, min(high, n) + 1))
        return RankEvidence(n, m, u, tail / math.comb(n + m, n), "exact")
    if n * m <= EXACT_PAIRS and len(levels) == len(values):
        return RankEvidence(n, m, u, _exact_upper_tail(u, n, m), "exact")
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    total = n + m
    tie_term = sum(t**3 - t for t in counts.values()) / (total * (total - 1))
    variance = n * m / 12 * ((total + 1) - tie_term)
    if variance <= 0:
        return RankEvidence(n, m, u, 1.0, "normal")
    z = (u - n * m / 2 - 0.5) / math.sqrt(variance)
    return RankEvidence(n, m, u, 0.5 * math.erfc(z / math.sqrt(2)), "normal")
