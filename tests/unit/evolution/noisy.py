"""A stochastic model whose truth is known, for testing and measuring the gate.

Each revision answers each evaluation case correctly with a fixed probability (its true quality);
every replay is an independent draw, as with a model sampled at a temperature above zero. A gate
decision on such replays can then be scored: promoting a candidate that is truly no better is a
false promotion; refusing one that is truly better is a missed improvement.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from o.evolution import evaluator, policy
from o.evolution.metrics import LiveSamples, VersionStats


@dataclass(frozen=True)
class Truth:
    current: float  # P(a replay of the current revision is right)
    candidate: float

    @property
    def better(self) -> bool:
        return self.candidate > self.current


def replays(quality: float, cases: int, samples: int, rng: random.Random) -> evaluator.Summary:
    """One revision's shadow results: ``samples`` replays of each of ``cases`` cases, scored 1 or 0."""
    return evaluator.Summary(
        [
            evaluator.CaseResult(f"case-{i}", "in", "out", True, float(rng.random() < quality), None, None, 100.0, 50)
            for _ in range(samples)
            for i in range(cases)
        ]
    )


def promotion_rate(
    gate: evaluator.Gate, truth: Truth, *, cases: int, trials: int, seed: int, samples: int = 1
) -> float:
    """How often the gate promotes over ``trials`` independent shadow tests (seeded: repeatable)."""
    rng = random.Random(seed)
    promoted = 0
    for _ in range(trials):
        current = replays(truth.current, cases, samples, rng)
        candidate = replays(truth.candidate, cases, samples, rng)
        promoted += evaluator.gate(gate, current, candidate).passed
    return promoted / trials


# The gate before it knew its error rates: a fixed threshold on the mean and no case may score lower.
OLD_GATE = evaluator.Gate(alpha=1.0, min_cases=1, min_improvement=0.01, max_regressions=0)


# --- the canary on noisy live traffic ----------------------------------------------------------------------


@dataclass(frozen=True)
class LiveTruth:
    """How a revision really behaves on live turns: its error rate, its median latency (log-normal noise), and
    how often its reply is right (``quality``), which the noisy judge sees through its noise."""

    error_rate: float
    latency_ms: float = 800.0
    quality: float = 0.6


# The judge is model output: a right reply scores about 0.8 and a wrong one about 0.3, each with noise (sd 0.25),
# rounded to a tenth and kept in [0, 1] — so a single score often misjudges; only a sample of them tells.
JUDGE_RIGHT, JUDGE_WRONG, JUDGE_NOISE = 0.8, 0.3, 0.25


def judge_score(truth: LiveTruth, rng: random.Random) -> float:
    """The noisy judge's score of one live reply of a revision whose truth is ``truth``."""
    mean = JUDGE_RIGHT if rng.random() < truth.quality else JUDGE_WRONG
    return min(1.0, max(0.0, round(mean + rng.gauss(0.0, JUDGE_NOISE), 1)))


def _turns(truth: LiveTruth, n: int, rng: random.Random, judge_sample: float = 0.0) -> VersionStats:
    errors = [1.0 if rng.random() < truth.error_rate else 0.0 for _ in range(n)]
    latency = [truth.latency_ms * rng.lognormvariate(0.0, 0.5) for _ in range(n)]
    tokens = [float(rng.randint(200, 400)) for _ in range(n)]
    judged = [judge_score(truth, rng) for _ in range(n) if rng.random() < judge_sample]
    samples = LiveSamples(errors, latency, tokens, [0.0] * n, judged)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return VersionStats(n, mean(errors), mean(latency), mean(tokens), samples=samples)


def canary_run(
    base: LiveTruth,
    cand: LiveTruth,
    *,
    turns_per_round: float,
    rng: random.Random,
    rules: evaluator.CanaryGate | None = None,
    weights: tuple[float, ...] = (0.05, 0.25, 0.5),
    max_rounds: int = 3,
) -> tuple[str, int]:
    """One canary as the phases run it: each round the agent serves a Poisson number of turns (mean
    ``turns_per_round``) split by the step's weight, and the verdict bakes, steps, promotes or rolls back.
    Returns (outcome: promoted / rolled_back / inconclusive, live turns the candidate served)."""
    rules = rules or evaluator.CanaryGate()
    served = 0
    for step, weight in enumerate(weights):
        base_stats, cand_stats = _turns(base, 0, rng), _turns(cand, 0, rng)
        for round_no in range(max_rounds):
            total = _poisson(turns_per_round, rng)
            to_cand = sum(rng.random() < weight for _ in range(total))
            served += to_cand
            base_stats = _merge(base_stats, _turns(base, total - to_cand, rng, rules.judge_sample))
            cand_stats = _merge(cand_stats, _turns(cand, to_cand, rng, rules.judge_sample))
            verdict = policy.canary_verdict(
                rules, base_stats, cand_stats, round_no=round_no, max_rounds=max_rounds,
                last_step=step + 1 == len(weights),
            )  # fmt: skip
            if verdict.action == "bake":
                continue
            if verdict.action == "rollback":
                return ("inconclusive" if "inconclusive" in verdict.reason else "rolled_back"), served
            if verdict.action == "promote":
                return "promoted", served
            break  # step: the next weight, with a fresh window
    raise AssertionError("a canary always ends")


def _poisson(mean: float, rng: random.Random) -> int:
    # Knuth's method is fine for the small means simulated here; a normal approximation above
    if mean > 50:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _merge(a: VersionStats, b: VersionStats) -> VersionStats:
    assert a.samples is not None and b.samples is not None
    samples = LiveSamples(
        a.samples.errors + b.samples.errors,
        a.samples.latency_ms + b.samples.latency_ms,
        a.samples.tokens + b.samples.tokens,
        a.samples.tool_failures + b.samples.tool_failures,
        a.samples.judge + b.samples.judge,
    )
    n = len(samples.errors)
    mean = lambda xs: sum(xs) / n if n else 0.0  # noqa: E731
    return VersionStats(n, mean(samples.errors), mean(samples.latency_ms), mean(samples.tokens), samples=samples)


def canary_rates(
    base: LiveTruth,
    cand: LiveTruth,
    *,
    turns_per_round: float,
    trials: int,
    seed: int,
    rules: evaluator.CanaryGate | None = None,
) -> dict[str, float]:
    """Share of ``trials`` seeded canaries that ended promoted, rolled back and inconclusive."""
    rng = random.Random(seed)
    counts = {"promoted": 0, "rolled_back": 0, "inconclusive": 0}
    for _ in range(trials):
        outcome, _served = canary_run(base, cand, turns_per_round=turns_per_round, rng=rng, rules=rules)
        counts[outcome] += 1
    return {k: v / trials for k, v in counts.items()}
