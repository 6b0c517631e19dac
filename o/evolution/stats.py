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
