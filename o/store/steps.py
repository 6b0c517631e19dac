"""SQL for steps: one LLM call and the tool calls it asked for, keyed by (run_id, step_index)."""

from __future__ import annotations

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


@dataclass(frozen=True)
class QueuedReply:
    """A first phase's writes, sent (:func:`queue_reply`) and not yet answered."""

    expected: Run
    cursors: tuple[Cursor, Cursor, Cursor, Cursor]


def queue_reply(
    conn: Conn, expected: Run, step: dict[str, Any], message: dict[str, Any], run_changes: dict[str, Any]
) -> QueuedReply:
    """Send a first phase's writes for when nothing raced it, on a connection in pipeline mode (the
    transaction's first round trip, :meth:`o.store.db.Database.transaction_opened_by`): lock the run, insert
    the step and its reply, update the run with ``run_changes``. The server runs them in order, so every
    write comes after the run's lock, as when sent one by one. :func:`stored_reply` reads the outcome."""
    return QueuedReply(
        expected,
        (
            conn.execute("SELECT * FROM runs WHERE id = %s FOR UPDATE", (expected.id,)),
            conn.execute(*rows.insert_statement("steps", step, json_columns=_JSON, on_conflict="DO NOTHING")),
            conn.execute(*messages.insert_statement(message)),
            conn.execute(*runs.update_statement(expected.id, run_changes)),
        ),
    )


def stored_reply(conn: Conn, queued: QueuedReply) -> tuple[Run, dict[str, Any]] | None:
    """(run, reply) as :func:`queue_reply` stored them; None, after rolling back and beginning again (nothing
    written), when the run was no longer as expected (read before the LLM call: a cancel arrived, another
    worker moved it) or the step existed (another worker stored it first): the caller then takes it a
    statement at a time."""
    locked, step, reply, updated = (cursor.fetchone() for cursor in queued.cursors)
    if locked is None or Run.of(locked) != queued.expected or step is None or reply is None or updated is None:
        begin_again(conn)
        return None
    return Run.of(updated), reply


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
