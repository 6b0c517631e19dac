"""Which revision of the agent serves a run, and how that run went.

The loop calls :func:`serve_run` on every LLM step: the run's first step asks the
:class:`RevisionRouter` (with the run id as the request id) and stores the answer in
``runs.metadata["revision"]``; every later step, replay and tool phase reuses it, so a run never
mixes revisions even when a canary starts or ends meanwhile. :func:`effective_agent` overlays that
revision on the agent row. When the run ends, :func:`record_run` (inside the transaction that
finishes it) records its outcome once per run under its revision; on AWS the agent-step Lambda also
calls :func:`publish_outcome`, which reports the turn under the Lambda version that served the run's
first step, through an :class:`OutcomeMetrics` adapter.

The router is a port: without evolution every run is served by the agent's own revision
(:class:`CurrentRevision`); :mod:`o.evolution.routing` sends a canary's share to its candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from o.agent import revisions
from o.observability import logger
from o.store import agents as agent_store
from o.store import evolution as evolution_store
from o.store import revisions as revision_store
from o.store import runs as run_store
from o.store.db import Conn, Database
from o.store.records import Run, RunStatus
from o.store.steps import RunOutcome

# runs.metadata keys: the revision serving the run (feedback reads it too), the Lambda version that
# decided it, and the flags that make recording and publishing its outcome happen once
REVISION_KEY = "revision"
VERSION_KEY = "version"
RECORDED_FLAG = "turn_recorded"
PUBLISHED_FLAG = "turn_published"


class RevisionRouter(Protocol):
    def revision_for(self, conn: Conn, agent: dict[str, Any], request_id: str) -> int | None:
        """The revision number that should serve ``request_id`` (None: the agent has none yet)."""
        ...


class CurrentRevision:
    """Every request is served by the agent's own revision (no canary can exist)."""

    def revision_for(self, conn: Conn, agent: dict[str, Any], request_id: str) -> int | None:
        del conn, request_id
        revision: int | None = agent.get("revision")
        return revision


@dataclass(frozen=True)
class Turn:
    ok: bool
    latency_ms: float
    tokens: int


class OutcomeMetrics(Protocol):
    """Where a finished turn is reported under the Lambda version that served it (AWS)."""

    def put_outcome(self, agent_id: str, version: str, turn: Turn) -> None: ...


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


def decide(
    conn: Conn, router: RevisionRouter, run: Run, agent: dict[str, Any], *, version: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(agent, the metadata recording the decision) for a run's first step; the caller stores the
    decision with :func:`o.store.runs.start_serving`, where an earlier decision wins.

    An agent that never had a revision gets revision 1 now (once), so every run — and the feedback on
    it — names the configuration that served it. Shadow copies (``metadata.shadow_of``) are left alone:
    they carry a candidate's configuration, not a revision of their own.
    """
    if decide_writes(agent):
        revisions.current(conn, agent["organization_id"], agent["id"])
        agent = {**agent, **agent_store.revision_state(conn, agent["id"])}
    values: dict[str, Any] = {REVISION_KEY: router.revision_for(conn, agent, run.id)}
    if version is not None:
        values[VERSION_KEY] = version
    return agent, values


def decide_writes(agent: dict[str, Any]) -> bool:
    """Whether :func:`decide` writes: the agent never had a revision (and is no shadow copy)."""
    return agent.get("revision") is None and not (agent.get("metadata") or {}).get("shadow_of")


def undecided(run: Run) -> bool:
    """Whether the run's revision is yet to be decided (its first step)."""
    return run.status == RunStatus.CREATED or REVISION_KEY not in run.metadata


def serve_run(
    conn: Conn, router: RevisionRouter, run: Run, agent: dict[str, Any], *, version: str | None = None
) -> tuple[Run, dict[str, Any]]:
    """(run, agent as the run's revision configures it). The run's first step decides the revision and
    moves the run to ``running`` (one UPDATE); later steps and replays only read the decision."""
    if undecided(run):
        agent, values = decide(conn, router, run, agent, version=version)
        run = run_store.start_serving(conn, run.id, REVISION_KEY, values) or run
    return run, effective_agent(conn, agent, run_revision(run, agent))


def run_revision(run: Run, agent: dict[str, Any]) -> int | None:
    """The revision a run was decided on (the agent's own for a run from before that was recorded)."""
    revision: int | None = run.metadata[REVISION_KEY] if REVISION_KEY in run.metadata else agent.get("revision")
    return revision


def turn_of(run: Run) -> Turn | None:
    """How a finished run went; None for a run that is not finished or was cancelled (not the revision's doing).

    Latency is the run's wall time from the request to its end, what the user waited (a pause for a
    human's approval included).
    """
    if not run.next_action.ended or run.status == RunStatus.CANCELLED:
        return None
    ended = run.completed_at or datetime.now(UTC)
    latency_ms = max(0.0, (ended - run.created_at).total_seconds() * 1000)
    tokens = int(run.usage.get("total_tokens", 0))
    return Turn(run.status == RunStatus.COMPLETED, latency_ms, tokens)


def record_run(conn: Conn, run: Run) -> bool:
    """Record the outcome of a run that just finished, once, under its revision (inside the finishing
    transaction, so a crash either records both or neither). False when there is nothing to record."""
    statement = record_statement(run)
    return statement is not None and evolution_store.record_run_outcome(conn, statement)


def record_statement(run: Run) -> tuple[str, dict[str, Any]] | None:
    """:func:`record_run`'s statement and values for ``run`` as it ends (None: nothing to record), for a
    caller that sends it in one pipeline with the run's end."""
    outcome = _outcome(run)
    if outcome is None:
        return None
    revision, turn = outcome
    return evolution_store.run_outcome_statement(
        run.id,
        RECORDED_FLAG,
        run.agent_id,
        revision,
        ok=turn.ok,
        latency_ms=turn.latency_ms,
        tokens=turn.tokens,
    )


def outcome_of(run: Run) -> RunOutcome | None:
    """What :func:`record_run` records for ``run`` as it ends (None: nothing), for a caller that writes it in
    one statement with the run's end (:func:`o.store.steps.store_last_result_alone`)."""
    outcome = _outcome(run)
    if outcome is None:
        return None
    revision, turn = outcome
    return RunOutcome(RECORDED_FLAG, revision, turn.ok, turn.latency_ms, turn.tokens)


def _outcome(run: Run) -> tuple[int, Turn] | None:
    """(its revision, how it went) of a run that finished; None when there is nothing to record."""
    revision = run.metadata.get(REVISION_KEY)
    turn = turn_of(run)
    if revision is None or turn is None:
        return None
    return int(revision), turn


def publish_outcome(db: Database, metrics: OutcomeMetrics, run_id: str, version: str) -> bool:
    """Report a finished run's outcome once, under the Lambda version that decided its revision
    (``version``, the caller's own, when the run recorded none). The claim commits only if the report
    succeeded, so a failed one is tried again by the next invocation that sees the run finished; a
    failure is logged, never raised: the run itself is over and must not fail for its metrics."""
    try:
        with db.transaction() as conn:
            run = run_store.get(conn, run_id, for_update=True)
            turn = turn_of(run) if run is not None else None
            if run is None or turn is None or not run_store.claim_flag(conn, run_id, PUBLISHED_FLAG):
                return False
            served_by = str(run.metadata.get(VERSION_KEY) or version)
            metrics.put_outcome(run.agent_id, served_by, turn)
    except Exception:
        logger.exception("could not publish a run's outcome", extra={"run_id": run_id})
        return False
    return True
