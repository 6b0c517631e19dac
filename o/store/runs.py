"""SQL for runs: one agent turn (a request and the steps it took), and where its loop stands."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import messages as message_store
from o.store import rows
from o.store.db import Conn, outside_transaction
from o.store.filters import Where
from o.store.pages import Page, fetch_page
from o.store.records import Run, Step

JSON_COLUMNS = {"request", "usage", "metadata"}
UPDATABLE = {
    "status",
    "stop_reason",
    "usage",
    "metadata",
    "iteration",
    "next_action",
    "task_token",
    "execution_arn",
    "cancel_requested",
    "error",
    "completed_at",
}


def _run(row: dict[str, Any] | None) -> Run | None:
    return Run.of(row) if row is not None else None


def insert(conn: Conn, run: dict[str, Any]) -> Run:
    return Run.of(rows.insert_one(conn, "runs", run, json_columns=JSON_COLUMNS))


def get(conn: Conn, run_id: str, *, organization_id: str | None = None, for_update: bool = False) -> Run | None:
    return _run(rows.get_by_id(conn, "runs", run_id, organization_id=organization_id, for_update=for_update))


def update(conn: Conn, run_id: str, changes: dict[str, Any]) -> Run:
    row = conn.execute(*update_statement(run_id, changes)).fetchone()
    assert row is not None
    return Run.of(row)


def update_statement(run_id: str, changes: dict[str, Any]) -> tuple[str, list[Any]]:
    """The UPDATE of the run returning it, and its values (for a caller that sends several in one pipeline)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = [Jsonb(v) if c in JSON_COLUMNS else v for c, v in changes.items()]
    return _update_sql(tuple(changes)), [*values, run_id]


# composed and rendered once per set of columns (a step's updates are the same few every time)
@functools.lru_cache(maxsize=128)
def _update_sql(columns: tuple[str, ...]) -> str:
    assignments: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns]
    assignments.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE runs SET {} WHERE id = %s RETURNING *").format(sql.SQL(", ").join(assignments))
    return query.as_string(None)


# The version of an agent as a step reads it (``step_agent``): its row's xmin (the transaction that wrote
# its current version, which any UPDATE changes) and, for each attached tool, the attachment's and the
# tool's, with the tool's id. A change to the agent, to one of its tools, or to which tools it has changes it.
_STEP_AGENT_VERSION = """a.xmin::text || '/' || coalesce((
        SELECT string_agg(at.xmin::text || '.' || t.xmin::text || '.' || t.id, ',' ORDER BY t.name)
        FROM agent_tools at JOIN tools t ON t.id = at.tool_id WHERE at.agent_id = a.id), '')"""


@dataclass(frozen=True)
class State:
    """A phase's entry read: the run (None: not found), its step (None: not stored yet) and the version of
    its agent (None: the agent is gone), with the messages asked for."""

    run: Run | None
    step: Step | None
    agent_version: str | None
    # the in-context messages of the run's conversation, in the order the model reads them (``context``;
    # None unless the step is yet to be stored)
    context: list[dict[str, Any]] | None = None
    # the run's tool results so far, in the order they were stored (``tool_results``; None unless the run
    # is at its tools or an approval)
    tool_results: list[dict[str, Any]] | None = None


def load_state(
    conn: Conn, run_id: str, step_index: int | None = None, *, context: bool = False, tool_results: bool = False
) -> State:
    """The run, its step ``step_index`` (default: the one it stands at) and the version of its agent, and
    the messages asked for, in ONE statement (the messages as JSON arrays: one value each for psycopg to
    decode, which pydantic-core parses, instead of a statement of their own); the agent itself is
    :func:`step_agent`'s, which a caller that kept it for that version need not ask again."""
    row = conn.execute(_load_state_sql(context, tool_results), (step_index, run_id)).fetchone()
    if row is None:
        return State(None, None, None)
    step = row["step_json"]
    return State(
        Run.of(row),
        Step.of(step) if step is not None else None,
        row["agent_version"],
        row.get("context_json"),
        row.get("tool_results_json"),
    )


@functools.lru_cache(maxsize=4)
def _load_state_sql(context: bool, tool_results: bool) -> str:
    # each only when the phase will go on (a replay of a finished phase needs neither; NULL: not read)
    extra = ""
    if context:
        messages = message_store.context_json("r.agent_id", "r.conversation_id")
        extra += f", CASE WHEN s.id IS NULL AND r.next_action = 'step' THEN {messages} END AS context_json"
    if tool_results:
        messages = message_store.tool_results_json("r.id")
        extra += f", CASE WHEN r.next_action IN ('tools', 'approval') THEN {messages} END AS tool_results_json"
    return f"""SELECT r.*, to_jsonb(s) AS step_json, {_STEP_AGENT_VERSION} AS agent_version{extra}
    FROM runs r
    LEFT JOIN steps s ON s.run_id = r.id AND s.step_index = coalesce(%s, r.iteration)
    LEFT JOIN agents a ON a.id = r.agent_id AND a.organization_id = r.organization_id
    WHERE r.id = %s"""


def step_agent(conn: Conn, organization_id: str, agent_id: str) -> tuple[str, dict[str, Any]] | None:
    """(version, agent) of the agent as a step reads it: a JSON object (timestamps as text), which is all
    the loop needs, with its attached tools rows under ``tools_json``; None when it is gone."""
    row = conn.execute(
        f"""SELECT {_STEP_AGENT_VERSION} AS agent_version,
                  to_jsonb(a) || jsonb_build_object('tools_json', (
                      SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.name), '[]'::jsonb)
                      FROM agent_tools at JOIN tools t ON t.id = at.tool_id WHERE at.agent_id = a.id
                  )) AS agent_json
           FROM agents a WHERE a.id = %s AND a.organization_id = %s""",
        (agent_id, organization_id),
    ).fetchone()
    return (row["agent_version"], row["agent_json"]) if row is not None else None


def awaiting_approval(
    conn: Conn, agent_id: str, *, conversation_id: str | None = None, for_update: bool = False
) -> Run | None:
    """The run of the conversation (None: the agent's own) paused on an approval."""
    lock = " FOR UPDATE" if for_update else ""
    return _run(
        conn.execute(
            """SELECT * FROM runs WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s
                 AND next_action = 'approval'"""
            + lock,
            (agent_id, conversation_id),
        ).fetchone()
    )


def active_for_agent(conn: Conn, agent_id: str) -> list[Run]:
    rows = conn.execute(
        "SELECT * FROM runs WHERE agent_id = %s AND next_action IN ('step', 'tools', 'approval') ORDER BY created_at",
        (agent_id,),
    ).fetchall()
    return [Run.of(row) for row in rows]


def active_in_conversation(conn: Conn, agent_id: str, conversation_id: str | None) -> list[Run]:
    """The agent's active runs in one conversation (None: the agent's own): the ones a run there waits for."""
    rows = conn.execute(
        """SELECT * FROM runs WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s
             AND next_action IN ('step', 'tools', 'approval') ORDER BY created_at""",
        (agent_id, conversation_id),
    ).fetchall()
    return [Run.of(row) for row in rows]


def list_page(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    agent_ids: list[str] | None = None,
    statuses: list[str] | None = None,
    stop_reason: str | None = None,
) -> list[Run]:
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals_any("agent_id", agent_ids)
        .equals_any("status", statuses)
        .equals("stop_reason", stop_reason or None)  # an empty reason filters nothing
    )
    rows = fetch_page(conn, table="runs", scope=where.clause(), scope_params=where.params, page=page)
    return [Run.of(row) for row in rows]


def messages(conn: Conn, run_id: str, *, after_seq: int = 0) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM messages WHERE run_id = %s AND seq > %s ORDER BY seq", (run_id, after_seq)
    ).fetchall()


def start_serving(conn: Conn, run_id: str, key: str, values: dict[str, Any]) -> Run | None:
    """A run's first step: ``created`` becomes ``running`` and ``values`` are merged into its metadata
    unless ``key`` is there already, in one statement; the run as it now stands.

    Under the row lock a concurrent caller re-reads the committed row, so the first writer's values win.
    Called in autocommit (a step that otherwise only reads), it is its own transaction, sent in one
    round trip and committed without waiting for the WAL flush: a crash that loses it loses a decision
    nothing durable used yet (the step's next commit, synchronous, flushes it first), which the step's
    replay makes again.
    """
    params = (key, Jsonb(values), run_id)
    if not outside_transaction(conn):
        return _run(conn.execute(_START_SERVING.format(source=""), params).fetchone())
    # its own transaction, committed asynchronously: set_config(..., true) lasts to the end of the statement's
    # implicit transaction, whose commit reads it (one statement, not BEGIN, SET LOCAL, UPDATE and COMMIT)
    query = _START_SERVING.format(source="FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async")
    return _run(conn.execute(query, params).fetchone())


_START_SERVING = """UPDATE runs SET status = CASE WHEN status = 'created' THEN 'running' ELSE status END,
                           metadata = CASE WHEN metadata ? %s THEN metadata ELSE metadata || %s END,
                           updated_at = now()
                    {source} WHERE id = %s RETURNING runs.*"""


def claim_flag(conn: Conn, run_id: str, flag: str) -> bool:
    """Set ``metadata[flag]`` once; True only for the one caller that set it (an at-most-once claim)."""
    row = conn.execute(
        """UPDATE runs SET metadata = metadata || jsonb_build_object(%s::text, true)
           WHERE id = %s AND NOT metadata ? %s RETURNING id""",
        (flag, run_id, flag),
    ).fetchone()
    return row is not None


def stale(conn: Conn, *, idle_s: float, limit: int) -> list[str]:
    """Runs still due a ``step`` or ``tools`` action that nothing touched for ``idle_s`` seconds, oldest first."""
    rows = conn.execute(
        """SELECT id FROM runs WHERE next_action IN ('step', 'tools')
             AND updated_at < now() - make_interval(secs => %s)
           ORDER BY updated_at LIMIT %s""",
        (idle_s, limit),
    ).fetchall()
    return [row["id"] for row in rows]
