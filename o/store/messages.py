"""SQL for the message history (recall memory). ``seq`` orders an agent's messages."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.store import rows
from o.store.db import Conn
from o.store.pages import Page, fetch_page

_JSON = {"content", "tool_calls", "tool_returns", "metadata"}
COLUMNS = (
    "id",
    "organization_id",
    "agent_id",
    "role",
    "content",
    "text",
    "name",
    "tool_calls",
    "tool_call_id",
    "tool_returns",
    "step_id",
    "run_id",
    "step_position",
    "otid",
    "sender_id",
    "group_id",
    "in_context",
    "metadata",
    "conversation_id",
)

# What a history page shows (every reader turns the rows into Letta's messages: o/api/schemas/messages.py):
# not ``*``, which would carry each message's search columns (an embedding is thousands of bytes, parsed
# into an array per row), nor ``text`` (the content again, as plain text) and the bookkeeping columns
# no Letta message shows; each column read and decoded costs every row of every page.
_SHOWN = (
    "seq",
    "id",
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "tool_returns",
    "step_id",
    "run_id",
    "otid",
    "sender_id",
    "metadata",
    "created_at",
)
# quoted once here rather than escaped by libpq, name by name, on every request (5% of a page's CPU)
_LISTED = sql.SQL(", ".join(f'"{c}"' for c in _SHOWN))
# A row's version: the transaction that wrote it, which any UPDATE changes (what o/api/serialized.py keys on)
_VERSIONS = sql.SQL('"id", xmin::text AS "version"')

# Every column of a message but its recall index (the embedding vectors, ~20 kB of text each once the
# message is indexed, parsed into arrays, and the tsvector): what the agent loop reads of its messages
# every step. Reading 30 indexed messages with SELECT * took 13.6 ms (11.3 ms of it client CPU), 0.33 ms so.
STEP_COLUMNS = (
    "seq, id, organization_id, agent_id, role, content, text, name, tool_calls, tool_call_id, tool_returns, "
    "step_id, run_id, step_position, otid, sender_id, group_id, in_context, metadata, created_at, "
    "embedding_dim, embedding_model, search_len, conversation_id"
)


def insert_statement(message: dict[str, Any]) -> tuple[str, list[Any]]:
    """The INSERT of one message returning it (no row when its (step_id, step_position) exists), and its values."""
    return rows.insert_statement(
        "messages",
        {c: message[c] for c in COLUMNS if c in message},
        json_columns=_JSON,
        on_conflict="(step_id, step_position) DO NOTHING",
    )


def insert_many(conn: Conn, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert messages in order. A message whose (step_id, step_position) exists is skipped,
    so replaying a step after a crash writes nothing twice; the stored rows are returned."""
    stored: list[dict[str, Any]] = []
    for message in messages:
        row = conn.execute(*insert_statement(message)).fetchone()
        if row is None:
            row = at_position(conn, message["step_id"], message["step_position"])
        assert row is not None
        stored.append(row)
    return stored


# ``conversation`` of :func:`list_page` that reads every conversation of the agent
ANY_CONVERSATION = "*"


def list_page(
    conn: Conn,
    organization_id: str,
    agent_id: str | None,
    page: Page,
    *,
    run_id: str | None = None,
    conversation: str | None = ANY_CONVERSATION,
    versions: bool = False,
) -> list[dict[str, Any]]:
    """A page of the agent's history (``agent_id`` None: of every agent of the organization): of one
    conversation (None: the agent's own, the default one) or, with :data:`ANY_CONVERSATION`, of all.
    ``versions``: each message's ``id`` and ``version`` only (:func:`shown` reads the rest)."""
    conds = [sql.SQL("organization_id = %s")]
    params: list[Any] = [organization_id]
    if agent_id is not None:
        conds.append(sql.SQL("agent_id = %s"))
        params.append(agent_id)
    if conversation is None:
        # not ``IS NOT DISTINCT FROM %s``: a prepared statement's generic plan cannot use an index for it
        conds.append(sql.SQL("conversation_id IS NULL"))
    elif conversation != ANY_CONVERSATION:
        conds.append(sql.SQL("conversation_id = %s"))
        params.append(conversation)
    if run_id is not None:
        conds.append(sql.SQL("run_id = %s"))
        params.append(run_id)
    return fetch_page(
        conn,
        table="messages",
        key="seq",
        columns=_VERSIONS if versions else _LISTED,
        scope=sql.SQL(" AND ").join(conds),
        scope_params=tuple(params),
        page=page,
        unique_key=True,  # seq is unique across all messages
        shape=(
            versions,
            agent_id is None,
            conversation if conversation in (None, ANY_CONVERSATION) else "one",
            run_id is None,
        ),
    )


# composed once: a page of history runs it whenever a message is not written yet
_SHOWN_BY_ID = sql.SQL(
    'SELECT {}, xmin::text AS "version" FROM messages WHERE id = ANY(%s) AND organization_id = %s'
).format(_LISTED)


def shown(conn: Conn, organization_id: str, message_ids: list[str]) -> list[dict[str, Any]]:
    """These messages of the organization as a page shows them, each with its ``version``."""
    return conn.execute(_SHOWN_BY_ID, (message_ids, organization_id)).fetchall()


def at_position(conn: Conn, step_id: str, position: int) -> dict[str, Any] | None:
    """The message a step stored at ``position`` (0: its reply; 1, 2, ...: its tool results)."""
    return conn.execute(*at_position_statement(step_id, position)).fetchone()


def at_position_statement(step_id: str, position: int) -> tuple[str, tuple[str, int]]:
    """:func:`at_position`'s statement and values (for a caller that sends several in one pipeline)."""
    return f"SELECT {STEP_COLUMNS} FROM messages WHERE step_id = %s AND step_position = %s", (step_id, position)


def tool_results(conn: Conn, run_id: str) -> list[dict[str, Any]]:
    """The run's tool results so far, in the order they were stored."""
    return conn.execute(
        f"SELECT {STEP_COLUMNS} FROM messages WHERE run_id = %s AND role = 'tool' ORDER BY seq", (run_id,)
    ).fetchall()


def requested_approvals(conn: Conn, message_id: str) -> list[str]:
    """The tool call ids an assistant message asked a human to approve."""
    row = conn.execute("SELECT metadata FROM messages WHERE id = %s", (message_id,)).fetchone()
    return list(((row or {}).get("metadata") or {}).get("requires_approval") or [])


def in_context(conn: Conn, agent_id: str, conversation_id: str | None = None) -> list[dict[str, Any]]:
    """In-context messages of one conversation (None: the agent's own) in the order the model reads
    them: the summary first, then by time."""
    return conn.execute(
        f"""SELECT {STEP_COLUMNS} FROM messages
           WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s AND in_context
           ORDER BY (role = 'system') DESC, seq""",
        (agent_id, conversation_id),
    ).fetchall()


def context_json(agent: str, conversation: str) -> str:
    """:func:`in_context`'s rows as one JSON array (timestamps as text), for a statement whose ``agent`` and
    ``conversation`` expressions name them (a phase's entry read)."""
    return f"""(SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY (m.role = 'system') DESC, m.seq), '[]'::jsonb)
               FROM (SELECT {STEP_COLUMNS} FROM messages
                     WHERE agent_id = {agent} AND conversation_id IS NOT DISTINCT FROM {conversation}
                       AND in_context) m)"""


def tool_results_json(run: str) -> str:
    """:func:`tool_results`' rows as one JSON array (timestamps as text), for a statement whose ``run``
    expression names the run."""
    return f"""(SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.seq), '[]'::jsonb)
               FROM (SELECT {STEP_COLUMNS} FROM messages WHERE run_id = {run} AND role = 'tool') m)"""


def evict(conn: Conn, message_ids: list[str]) -> int:
    """Take these messages out of the context window (they stay in recall); how many were still in it."""
    return len(
        conn.execute(
            "UPDATE messages SET in_context = false WHERE id = ANY(%s) AND in_context RETURNING id", (message_ids,)
        ).fetchall()
    )


def evict_all(conn: Conn, agent_id: str, conversation_id: str | None = None) -> int:
    """Take every in-context message of one conversation (None: the agent's own history) out of the
    context window; how many there were."""
    return len(
        conn.execute(
            """UPDATE messages SET in_context = false
               WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s AND in_context RETURNING id""",
            (agent_id, conversation_id),
        ).fetchall()
    )


def count(conn: Conn, agent_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM messages WHERE agent_id = %s", (agent_id,)).fetchone()
    return int(row["n"]) if row else 0


def get(conn: Conn, message_id: str, organization_id: str | None = None) -> dict[str, Any] | None:
    """The message (when ``organization_id`` is given, only if it is that organization's)."""
    row = conn.execute("SELECT * FROM messages WHERE id = %s", (message_id,)).fetchone()
    if row is not None and organization_id is not None and row["organization_id"] != organization_id:
        return None
    return row


def last_seq(conn: Conn) -> int:
    """The newest message's position in the history of every agent (0 when there is none)."""
    row = conn.execute("SELECT coalesce(max(seq), 0) AS s FROM messages").fetchone()
    return int(row["s"]) if row else 0
