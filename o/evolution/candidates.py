"""Several candidates per pass: recorded as revisions, shadow-tested beside one replay of the current revision,
and chosen from the Pareto front of (score, cost, latency), so that a candidate as good and cheaper wins.

A candidate that repeats a change an earlier evolution rolled back (the same configuration, by hash) is
skipped before it costs a replay: the evolution history is what the proposer learns from, and the skip
makes sure a forgotten lesson is not paid for twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o.agent import revisions
from o.evolution import evaluator
from o.evolution.deps import EvolutionDeps, Stop
from o.evolution.journal import event
from o.store import evolution as store
from o.store import reflection as reflection_store
from o.store.db import Conn
from o.store.evolution import Evolution, EvolutionStatus


def record(
    deps: EvolutionDeps,
    conn: Conn,
    evo: Evolution,
    proposals: list[tuple[dict[str, Any], str]],
    skipped: list[str],
) -> None:
    """Store the proposals that do not repeat a rolled-back change as candidate revisions (in ``conn``)."""
    rejected = reflection_store.rejected_config_hashes(conn, evo.agent_id)
    kept: list[dict[str, Any]] = []
    for config, rationale in proposals:
        earlier = rejected.get(revisions.config_hash(revisions.normalize(config)))
        if earlier is not None:
            skipped.append(f"repeats the change rolled back in {earlier}")
            continue
        candidate = revisions.propose(
            conn, evo.organization_id, evo.agent_id, config, author="agent", rationale=rationale, evolution_id=evo.id
        )
        if candidate["parent"] != evo.base_revision:
            raise Stop(f"the agent was reconfigured during the evolution (now revision {candidate['parent']})")
        kept.append({"revision": candidate["number"], "rationale": rationale, "diff": candidate["diff"]})
    if not kept:
        raise Stop("no candidate left to test: " + "; ".join(skipped))
    first = kept[0]
    changes = {
        "status": EvolutionStatus.PROPOSED,
        "candidate_revision": first["revision"],
        "rationale": first["rationale"],
        "diff": first["diff"],
    }
    store.update(conn, evo.id, changes)
    store.add_figures(conn, evo.id, {"candidates": kept, "skipped": skipped})
    more = f" (+{len(kept) - 1} more candidates)" if len(kept) > 1 else ""
    message = f"candidate revision {first['revision']}: {first['rationale']}{more}"
    event(deps, conn, evo.id, "proposed", message, {"diff": first["diff"], "candidates": kept, "skipped": skipped})


def candidate_revisions(evo: Evolution) -> list[int]:
    """The revisions the shadow test compares with the current one."""
    recorded = [int(c["revision"]) for c in evo.figures.get("candidates") or []]
    if recorded:
        return recorded
    assert evo.candidate_revision is not None
    return [evo.candidate_revision]


@dataclass(frozen=True)
class Point:
    """One shadow-tested candidate: its mean score (higher is better), tokens and latency per replay
    (lower is better), and whether the gate passed it."""

    revision: int
    score: float
    tokens: float
    latency_ms: float
    passed: bool

    def dominates(self, other: Point) -> bool:
        """At least as good on every objective and better on one."""
        no_worse = self.score >= other.score and self.tokens <= other.tokens and self.latency_ms <= other.latency_ms
        better = self.score > other.score or self.tokens < other.tokens or self.latency_ms < other.latency_ms
        return no_worse and better


def front(points: list[Point]) -> list[Point]:
    """The points no other point dominates."""
    return [p for p in points if not any(q.dominates(p) for q in points)]


def choose(points: list[Point]) -> tuple[Point, list[Point]]:
    """(the candidate to go on with, the front it was chosen from): the front of those the gate passed (of all
    when none passed, so the gate's refusal is recorded for the best); on it the highest score, then the
    fewest tokens, then the lowest latency."""
    eligible = [p for p in points if p.passed] or points
    best = front(eligible)
    return max(best, key=lambda p: (p.score, -p.tokens, -p.latency_ms)), best


def judge(
    gate: evaluator.Gate, current: evaluator.Summary, tested: dict[int, evaluator.Summary]
) -> tuple[int, dict[str, Any]]:
    """(the chosen candidate revision, the shadow figures: the current's and the chosen one's, and every
    candidate's with whether the gate passed it and whether it is on the front)."""
    points = [
        Point(number, s.score, s.tokens, s.latency_ms, evaluator.gate(gate, current, s).passed)
        for number, s in tested.items()
    ]
    chosen, best = choose(points)
    listed = [
        {
            **tested[p.revision].figures(),
            "revision": p.revision,
            "gate_passed": p.passed,
            "on_front": p in best,
            "chosen": p == chosen,
        }
        for p in points
    ]
    figures = {"current": current.figures(), "candidate": tested[chosen.revision].figures(), "candidates": listed}
    return chosen.revision, figures
