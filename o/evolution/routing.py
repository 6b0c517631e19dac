"""Which revision serves a live turn while a canary runs: the evolution's side of
:class:`o.agent.serving.RevisionRouter`.

Locally the split comes from the :class:`~o.evolution.rollout.LocalRouter` of the agent's canary (a
stable hash of the run id under the canary's weight). On AWS the Lambda alias has already split the
traffic, and the version that runs tells which side it is on: a version published for a canary
carries its evolution's id (``Settings.canary_evolution``, see :mod:`o.evolution.rollout`), so it
runs the candidate for that agent only, and only while that evolution is still in its canary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o.evolution.rollout import LocalRouter
from o.store import evolution as evolution_store
from o.store.db import Conn


@dataclass(frozen=True)
class CanaryRouter:
    # the evolution whose candidate this process's Lambda version carries (None: not a canary version)
    canary_evolution: str | None = None

    def revision_for(self, conn: Conn, agent: dict[str, Any], request_id: str) -> int | None:
        current: int | None = agent.get("revision")
        evo = evolution_store.canary_for_agent(conn, agent["id"])
        if evo is None or evo.candidate_revision is None:
            return current
        candidate = evo.candidate_revision
        canary = evo.canary or {}
        if canary.get("mode") == "lambda":
            return candidate if self.canary_evolution == evo.id else current
        router = LocalRouter(float(canary["weight"]), canary.get("seed") or evo.id)
        return candidate if router.to_candidate(request_id) else current
