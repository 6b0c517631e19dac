"""Which revision serves a live turn, and recording how that turn went.

The agent loop asks :func:`revision_for_request` before building a step (with the run id as the
request id, so every step of one run lands on the same side) and overlays the answer with
:func:`effective_agent`; after the run it calls :func:`record_turn`. Locally the split comes from
the :class:`~o.evolution.rollout.LocalRouter` of the agent's canary; on AWS the Lambda alias has
already split the traffic, and the version that runs tells which side it is on through
``O_CANARY_EVOLUTION`` (see :mod:`o.evolution.rollout`).
"""

from __future__ import annotations

import os
from typing import Any

from o.evolution.rollout import CANARY_ENV, LocalRouter
from o.store import evolution as evolution_store
from o.store import revisions as revision_store
from o.store.db import Conn


def revision_for_request(
    conn: Conn, agent: dict[str, Any], request_id: str, *, canary_evolution: str | None = None,
) -> int | None:
    """The revision number that should serve ``request_id`` (None: the agent has no revision yet)."""
    row = conn.execute(
        "SELECT * FROM evolutions WHERE agent_id = %s AND status = 'canary'", (agent["id"],)
    ).fetchone()
    if row is None or row["candidate_revision"] is None:
        return agent.get("revision")
    canary = row["canary"] or {}
    if canary.get("mode") == "lambda":
        marker = canary_evolution if canary_evolution is not None else os.environ.get(CANARY_ENV)
        return row["candidate_revision"] if marker == row["id"] else agent.get("revision")
    router = LocalRouter(float(canary["weight"]), canary.get("seed") or row["id"])
    return row["candidate_revision"] if router.to_candidate(request_id) else agent.get("revision")


def effective_agent(conn: Conn, agent: dict[str, Any], revision: int | None) -> dict[str, Any]:
    """The agent row as ``revision`` configures it (system, model settings, tool rules).

    ``version`` is shifted into a range the live agent never uses, so a compiled-prompt cache keyed
    by (agent id, version) keeps the candidate's prompt apart from the live one.
    """
    if revision is None or revision == agent.get("revision"):
        return agent
    row = revision_store.get(conn, agent["id"], revision)
    if row is None:
        return agent
    config = row["config"]
    return {
        **agent,
        "system": config["system"],
        "llm_config": config["llm_config"],
        "tool_rules": config["tool_rules"],
        "version": -(int(agent["version"]) * 10_000 + revision),
        "revision": revision,
    }


def record_turn(
    conn: Conn, agent_id: str, revision: int, *, ok: bool, latency_ms: float, tokens: int,
    request_id: str | None = None,
) -> None:
    """One live turn's outcome, for the canary comparison."""
    evolution_store.record_outcome(conn, agent_id, revision, ok=ok, latency_ms=latency_ms, tokens=tokens,
                                   request_id=request_id)
