"""A stochastic model whose truth is known, for testing and measuring the gate.

Each revision answers each evaluation case correctly with a fixed probability (its true quality);
every replay is an independent draw, as with a model sampled at a temperature above zero. A gate
decision on such replays can then be scored: promoting a candidate that is truly no better is a
false promotion; refusing one that is truly better is a missed improvement.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from o.evolution import evaluator


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
