"""Feedback on an agent's responses: a score attributed to the revision that produced the response.

A canary is judged on its feedback too, so a score must land on the revision that served the run it
rates (the run's recorded decision), not on whatever the agent runs now.
"""

from __future__ import annotations

from typing import Any

from o.agent import serving
from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.store import agents as agent_store
from o.store import evolution as store
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn


def _rated_run(conn: Conn, agent_id: str, run_id: str | None, message_id: str | None) -> str | None:
    """The run a score rates: the one given, or the one that produced ``message_id`` (they must agree)."""
    if not message_id:
        return run_id
    message = message_store.get(conn, message_id)
    if message is None or message["agent_id"] != agent_id:
        raise NotFound(f"message {message_id} not found for agent {agent_id}")
    if run_id and message["run_id"] and message["run_id"] != run_id:
        raise InvalidInput(f"message {message_id} belongs to run {message['run_id']}, not {run_id}")
    return run_id or message["run_id"]


def give(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    *,
    score: float,
    comment: str | None = None,
    run_id: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    agent = agent_store.require(conn, organization_id, agent_id)
    run_id = _rated_run(conn, agent_id, run_id, message_id)
    revision = agent.get("revision")
    if run_id:
        run = run_store.get(conn, run_id)
        if run is None or run.agent_id != agent_id:
            raise NotFound(f"run {run_id} not found for agent {agent_id}")
        revision = serving.run_revision(run, agent)
    return store.insert_feedback(
        conn,
        {
            "id": new_id("feedback"),
            "organization_id": organization_id,
            "agent_id": agent_id,
            "run_id": run_id,
            "message_id": message_id,
            "score": score,
            "comment": comment,
            "revision": revision,
        },
    )


# A step's verdict as a feedback score: the canary gate compares revisions by their mean score.
STEP_SCORES = {"positive": 1.0, "negative": 0.0}


def rate_step(
    conn: Conn,
    organization_id: str,
    step_id: str,
    verdict: str | None,
    tags: list[str] | None,
    comment: str | None = None,
) -> dict[str, Any]:
    """Record the user's verdict on a step (``steps.feedback``) and make it evidence for the evolution gate.

    The verdict is stored on the step and as the step's one feedback score, credited to the revision
    that served the step's run (a canary's candidate or the base), exactly as :func:`give` credits a
    score on a run; a cleared verdict (None) withdraws the score. Returns the step as the API shows it.
    """
    step = step_store.shown(conn, organization_id, step_id)
    if step is None:
        raise NotFound(f"step {step_id} not found")
    if verdict is not None and verdict not in STEP_SCORES:
        raise InvalidInput(f"feedback must be 'positive' or 'negative', not {verdict!r}")
    step_store.set_feedback(conn, step_id, verdict, tags)
    if verdict is None:
        step_store.clear_feedback(conn, step_id)
    else:
        agent = agent_store.require(conn, organization_id, step["agent_id"])
        run = run_store.get(conn, step["run_id"]) if step["run_id"] else None
        revision = serving.run_revision(run, agent) if run is not None else agent.get("revision")
        step_store.record_feedback(
            conn,
            {
                "id": new_id("feedback"),
                "organization_id": organization_id,
                "agent_id": step["agent_id"],
                "run_id": step["run_id"],
                "message_id": step["message_id"],
                "score": STEP_SCORES[verdict],
                "comment": comment,
                "revision": revision,
                "step_id": step_id,
            },
        )
    shown = step_store.shown(conn, organization_id, step_id)
    assert shown is not None
    return shown
