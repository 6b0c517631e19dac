"""SQL for steps: one LLM call and the tool calls it asked for, keyed by (run_id, step_index)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Cursor as PgCursor
from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import messages, rows, runs
from o.store.db import Conn, begin_again
from o.store.filters import Where
from o.store.messages import COLUMNS as MESSAGE_COLUMNS
from o.store.pages import Page, fetch_page
from o.store.records import NextAction, Run, Step, StopReason

Cursor = PgCursor[dict[str, Any]]

_JSON = {"usage", "tool_calls", "approvals", "trace"}
UPDATABLE = {
    "status",
    "usage",
    "stop_reason",
    "error",
    "completed_at",
    "tool_calls",
    "approvals",
    "next_action",
    "message_id",
    "model",
}


def insert(conn: Conn, step: dict[str, Any]) -> Step | None:
    """Insert a step; None when a step with the same (run_id, step_index) exists (a replay)."""
    row = rows.insert(conn, "steps", step, json_columns=_JSON, on_conflict="DO NOTHING")
    return Step.of(row) if row is not None else None


def store_reply(
    conn: Conn, expected: Run, step: dict[str, Any], message: dict[str, Any], run_changes: dict[str, Any]
) -> dict[str, Any] | None:
    """A first phase's writes for when nothing raced it, as ONE statement on a connection in autocommit (its
    own transaction: no BEGIN, no COMMIT, one round trip): lock the run if it is still as ``expected`` (read
    before the LLM call), then insert the step, then its reply, then update the run with ``run_changes``.
    Each write takes its row from the one before (the reply is inserted only with the step, the run
    updated only with the reply), so they happen together or not at all. The stored reply; None, nothing
    written, when the run was no longer as expected (a cancel arrived, another worker moved it) or the
    step existed: the caller then takes it a statement at a time."""
    query = _store_reply_sql(tuple(step), tuple(m for m in messages.COLUMNS if m in message), tuple(run_changes))
    values = {
        **_expected(expected),
        "step": Jsonb(_json_row(step)),
        "reply": Jsonb(_json_row(message)),
        **{f"c_{c}": rows.value(c, v, runs.JSON_COLUMNS) for c, v in run_changes.items()},
    }
    return conn.execute(query, values).fetchone()


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as a JSON object for ``jsonb_populate_record`` (timestamps as ISO text, which it parses)."""
    return {c: v.isoformat() if isinstance(v, datetime) else v for c, v in row.items()}


def _populated(table: str, cols: tuple[str, ...], source: str, param: str) -> str:
    """An INSERT of one row given as a JSON object (``%(param)s``: Postgres converts each column from it, so
    the values need no type of their own and psycopg adapts one value, not one per column), taking its
    row from ``source``: none, nothing inserted."""
    names = [f'"{c}"' for c in cols]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(f'r.{n}' for n in names)} "
        f"FROM jsonb_populate_record(NULL::{table}, %({param})s) r, {source}"
    )


# composed once per shape (the columns a step, its reply and the run's update carry)
@functools.lru_cache(maxsize=64)
def _store_reply_sql(step_cols: tuple[str, ...], reply_cols: tuple[str, ...], run_cols: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = %(c_{c})s' for c in run_cols)
    return f"""WITH locked AS ({_LOCK_EXPECTED}),
               step AS ({_populated("steps", step_cols, "locked", "step")} ON CONFLICT DO NOTHING RETURNING id),
               reply AS ({_populated("messages", reply_cols, "step", "reply")}
                         ON CONFLICT (step_id, step_position) DO NOTHING RETURNING *),
               run AS (UPDATE runs SET {sets}, updated_at = now() FROM reply WHERE runs.id = %(run)s
                       RETURNING runs.id)
           SELECT reply.* FROM reply"""


@dataclass(frozen=True)
class QueuedLocks:
    """The locks taken before a tool result is stored, sent (:func:`queue_result_locks`) and not yet answered."""

    run: Cursor | None
    step: Cursor
    message: Cursor


def queue_result_locks(conn: Conn, run_id: str | None, step_id: str, position: int) -> QueuedLocks:
    """Before a tool result is stored, on a connection in pipeline mode (the transaction's first round
    trip): lock the run (``run_id``; None: not), then the step, then read the message the step stored at
    ``position``. The step's row lock serialises concurrent replays; the message is read by a statement of
    its own after it, whose fresh snapshot sees what the lock holder committed (READ COMMITTED), which a
    join inside the locking statement would not."""
    return QueuedLocks(
        conn.execute("SELECT * FROM runs WHERE id = %s FOR UPDATE", (run_id,)) if run_id is not None else None,
        conn.execute("SELECT * FROM steps WHERE id = %s FOR UPDATE", (step_id,)),
        conn.execute(*messages.at_position_statement(step_id, position)),
    )


def result_locks(queued: QueuedLocks) -> tuple[Run | None, dict[str, Any] | None]:
    """(the run locked, None when not asked; the message stored at the position, None when none) of
    :func:`queue_result_locks`."""
    run = queued.run.fetchone() if queued.run is not None else None
    queued.step.fetchone()
    return (Run.of(run) if run is not None else None), queued.message.fetchone()


def store_last_result(
    conn: Conn,
    message: dict[str, Any],
    completion: tuple[str, NextAction, StopReason | None, float],
    run_id: str,
    run_changes: dict[str, Any],
    *also: tuple[str, Any],
) -> dict[str, Any] | None:
    """A step's last tool result, its completion (``completion``: step id, next action, stop reason, tool
    time) and the run's update, then the statements ``also`` (its outcome's record), in one round trip
    (pipelined) inside the caller's transaction, under the run's and the step's locks; the stored message.
    None, after rolling back and beginning again (nothing written), when the result was stored already
    or the step completed (a late duplicate): the caller then takes it a statement at a time."""
    step_id, next_action, stop_reason, tool_ms = completion
    with conn.pipeline():
        inserted = conn.execute(*messages.insert_statement(message))
        completed = conn.execute(_COMPLETE, (next_action, stop_reason, tool_ms, step_id))
        updated = conn.execute(*runs.update_statement(run_id, run_changes))
        for statement in also:
            conn.execute(*statement)
    row = inserted.fetchone()
    if row is None or completed.fetchone() is None or updated.fetchone() is None:
        begin_again(conn)
        return None
    return row


@dataclass(frozen=True)
class RunOutcome:
    """A run's outcome for its revision (``o.store.evolution``'s ``revision_outcomes`` row), recorded once:
    only by the write that sets ``runs.metadata[flag]``."""

    flag: str
    revision: int
    ok: bool
    latency_ms: float
    tokens: int


def store_last_result_alone(
    conn: Conn,
    expected: Run,
    message: dict[str, Any],
    completion: tuple[str, NextAction, StopReason | None, float],
    run_changes: dict[str, Any],
    outcome: RunOutcome | None = None,
) -> dict[str, Any] | None:
    """A step's last tool result, its completion (``completion``: step id, next action, stop reason, tool
    time), the run's update and, when the run ends, its ``outcome``, as ONE statement on a connection in
    autocommit (its own transaction), under the run's lock and only while the run is as ``expected`` (read
    when the phase began: a cancel, or another worker moving it, writes nothing). Each write takes its
    row from the one before, so they happen together or not at all: the run moves only when the result
    was stored and the step completed here. The stored message; None, nothing written, when the run was
    no longer as expected or the result was stored already (or the step completed without moving the run,
    which no writer does: the message only, and the caller's locked path then replays the step): the
    caller then takes it a statement at a time."""
    step_id, next_action, stop_reason, tool_ms = completion
    query = _last_result_sql(
        tuple(m for m in messages.COLUMNS if m in message), tuple(run_changes), outcome is not None
    )
    values = {
        **_expected(expected),
        "result": Jsonb(_json_row(message)),
        "step": step_id,
        "next": next_action,
        "stop": stop_reason,
        "tool_ms": tool_ms,
        **{f"c_{c}": rows.value(c, v, runs.JSON_COLUMNS) for c, v in run_changes.items()},
    }
    if outcome is not None:
        values.update(
            flag=outcome.flag,
            agent=expected.agent_id,
            revision=outcome.revision,
            ok=outcome.ok,
            latency=outcome.latency_ms,
            tokens=outcome.tokens,
        )
    return conn.execute(query, values).fetchone()


def _expected(run: Run) -> dict[str, Any]:
    """The values of :data:`_LOCK_EXPECTED`: the run as a phase read it."""
    return {
        "run": run.id,
        "updated_at": run.updated_at,
        "status": run.status,
        "next_action": run.next_action,
        "iteration": run.iteration,
    }


# The run locked, only while it is as a phase read it: any write to a run sets its updated_at, and
# the rest is checked too (a cancel, which no one-statement write stores, among them).
_LOCK_EXPECTED = """SELECT id, metadata FROM runs
                   WHERE id = %(run)s AND updated_at = %(updated_at)s AND status = %(status)s
                     AND next_action = %(next_action)s AND iteration = %(iteration)s AND NOT cancel_requested
                   FOR UPDATE"""


@functools.lru_cache(maxsize=64)
def _last_result_sql(result_cols: tuple[str, ...], run_cols: tuple[str, ...], records: bool) -> str:
    sets = "".join(f'"{c}" = %(c_{c})s, ' for c in run_cols)
    if records:
        sets += "metadata = runs.metadata || jsonb_build_object(%(flag)s::text, true), "
    outcome = """,
               outcome AS (INSERT INTO revision_outcomes (agent_id, revision, request_id, ok, latency_ms, tokens)
                           SELECT %(agent)s, %(revision)s, run.id, %(ok)s, %(latency)s, %(tokens)s
                           FROM run, locked WHERE NOT locked.metadata ? %(flag)s RETURNING id)"""
    return f"""WITH locked AS ({_LOCK_EXPECTED}),
               result AS ({_populated("messages", result_cols, "locked", "result")}
                          ON CONFLICT (step_id, step_position) DO NOTHING RETURNING *),
               step AS (UPDATE steps SET status = 'completed', next_action = %(next)s, stop_reason = %(stop)s,
                               completed_at = now(), tool_ms = %(tool_ms)s
                        FROM result WHERE steps.id = %(step)s AND steps.status <> 'completed' RETURNING steps.id),
               run AS (UPDATE runs SET {sets}updated_at = now() FROM step WHERE runs.id = %(run)s
                       RETURNING runs.id){outcome if records else ""}
           SELECT result.* FROM result WHERE EXISTS (SELECT FROM run)"""


def get(conn: Conn, step_id: str, *, for_update: bool = False) -> Step | None:
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute("SELECT * FROM steps WHERE id = %s" + lock, (step_id,)).fetchone()
    return Step.of(row) if row is not None else None


def by_index(conn: Conn, run_id: str, step_index: int) -> Step | None:
    row = conn.execute("SELECT * FROM steps WHERE run_id = %s AND step_index = %s", (run_id, step_index)).fetchone()
    return Step.of(row) if row is not None else None


def page_for_run(conn: Conn, organization_id: str, run_id: str, page: Page) -> list[Step]:
    """One page of a run's steps, in the order the loop took them."""
    rows = fetch_page(
        conn,
        table="steps",
        key="step_index",
        scope=sql.SQL("organization_id = %s AND run_id = %s"),
        scope_params=(organization_id, run_id),
        page=page,
    )
    return [Step.of(row) for row in rows]


def update(conn: Conn, step_id: str, changes: dict[str, Any]) -> Step:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes]
    values = [Jsonb(v) if c in _JSON else v for c, v in changes.items()]
    row = conn.execute(
        sql.SQL("UPDATE steps SET {} WHERE id = %s RETURNING *").format(sql.SQL(", ").join(assignments)),
        (*values, step_id),
    ).fetchone()
    assert row is not None
    return Step.of(row)


def complete(
    conn: Conn, step_id: str, next_action: NextAction, stop_reason: StopReason | None, *, tool_ms: float | None = None
) -> bool:
    """Record the loop's decision on a step; False when it was completed already (a late duplicate)."""
    return conn.execute(_COMPLETE, (next_action, stop_reason, tool_ms, step_id)).fetchone() is not None


_COMPLETE = """UPDATE steps SET status = 'completed', next_action = %s, stop_reason = %s, completed_at = now(),
                      tool_ms = coalesce(%s, tool_ms)
               WHERE id = %s AND status <> 'completed' RETURNING id"""


# --- what the API shows: steps of an organization, as rows ------------------------------------------------

# the step row with what its run says of how it was served (the agent's tags come with it for traces)
_SHOWN = sql.SQL("steps.*, a.tags AS agent_tags, a.llm_config AS agent_llm_config")
_JOIN = sql.SQL("steps LEFT JOIN agents a ON a.id = steps.agent_id")
_MESSAGE_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in ("seq", *MESSAGE_COLUMNS, "created_at"))


@dataclass(frozen=True)
class StepFilters:
    """What narrows a list of steps; a filter left empty keeps everything."""

    agent_id: str | None = None
    run_ids: Sequence[str] = ()
    model: str | None = None
    feedback: str | None = None
    has_feedback: bool | None = None
    tags: Sequence[str] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None

    def where(self, organization_id: str) -> Where:
        where = (
            Where("steps")
            .equals("organization_id", organization_id)
            .equals("agent_id", self.agent_id)
            .equals_any("run_id", self.run_ids)
            .equals("model", self.model)
            .equals("feedback", self.feedback)
            .tags("feedback_tags", self.tags)
            .in_range("created_at", self.created_from, self.created_to)
        )
        if self.has_feedback is not None:
            where.conditions.append(
                sql.SQL("steps.feedback IS NOT NULL" if self.has_feedback else "steps.feedback IS NULL")
            )
        return where


def shown(conn: Conn, organization_id: str, step_id: str) -> dict[str, Any] | None:
    """A step of the organization as the API shows it, or None."""
    return conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE steps.id = %s AND steps.organization_id = %s").format(_SHOWN, _JOIN),
        (step_id, organization_id),
    ).fetchone()


def list_shown(conn: Conn, organization_id: str, page: Page, filters: StepFilters) -> list[dict[str, Any]]:
    where = filters.where(organization_id)
    ids = fetch_page(
        conn,
        table="steps",
        scope=where.clause(),
        scope_params=where.params,
        page=page,
        columns=sql.SQL("id"),
    )
    if not ids:
        return []
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE steps.id = ANY(%s)").format(_SHOWN, _JOIN), ([r["id"] for r in ids],)
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [by_id[r["id"]] for r in ids if r["id"] in by_id]


def shown_for_run(conn: Conn, run_id: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE steps.run_id = %s ORDER BY steps.step_index LIMIT %s").format(_SHOWN, _JOIN),
        (run_id, limit),
    ).fetchall()


def messages_page(conn: Conn, organization_id: str, step_id: str, page: Page) -> list[dict[str, Any]]:
    """The messages a step stored (its reply, then its tool results), a page at a time."""
    return fetch_page(
        conn,
        table="messages",
        key="seq",
        columns=_MESSAGE_COLUMNS,
        scope=sql.SQL("organization_id = %s AND step_id = %s"),
        scope_params=(organization_id, step_id),
        page=page,
    )


def set_feedback(conn: Conn, step_id: str, feedback: str | None, tags: Sequence[str] | None) -> None:
    """The user's verdict on a step (None clears it); tags, when given, are added to the step's."""
    conn.execute(
        """UPDATE steps SET feedback = %s,
                  feedback_tags = CASE WHEN %s::text[] IS NULL THEN feedback_tags
                                       ELSE ARRAY(SELECT DISTINCT unnest(feedback_tags || %s::text[]) ORDER BY 1) END
           WHERE id = %s""",
        (feedback, None if tags is None else list(tags), None if tags is None else list(tags), step_id),
    )


def record_feedback(conn: Conn, row: dict[str, Any]) -> None:
    """The feedback row of a step (one per step): inserted, or replaced when the user changes their mind.

    ``created_at`` moves with a change, so a canary judged since some moment sees the verdict given in it.
    """
    conn.execute(
        """INSERT INTO feedback (id, organization_id, agent_id, run_id, message_id, score, comment, revision, step_id)
           VALUES (%(id)s, %(organization_id)s, %(agent_id)s, %(run_id)s, %(message_id)s, %(score)s, %(comment)s,
                   %(revision)s, %(step_id)s)
           ON CONFLICT (step_id) WHERE step_id IS NOT NULL
           DO UPDATE SET score = EXCLUDED.score, comment = EXCLUDED.comment, revision = EXCLUDED.revision,
                         created_at = now()""",
        row,
    )


def clear_feedback(conn: Conn, step_id: str) -> None:
    conn.execute("DELETE FROM feedback WHERE step_id = %s", (step_id,))
