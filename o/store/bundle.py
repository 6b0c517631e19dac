"""SQL for moving one agent's rows between databases (O's full bundle, :mod:`o.agent.portable`).

Rows travel column by column, as the table has them now: a column another migration adds travels
too without a change here. Values of types the driver reads (text, numbers, jsonb, arrays, times)
travel as those values; values of types it has no reader for (``tsvector``) and vectors travel in
Postgres' own binary form, so 100k embeddings are neither parsed nor printed on either side, and are
written back with a binary ``COPY``.

What belongs to an agent is listed in :data:`SCOPES`, table by table, in an order the foreign keys
allow inserting in. A table this database does not have is simply absent from an export.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import Format
from psycopg.rows import tuple_row
from psycopg.types.string import ByteaBinaryLoader

from o.errors import InvalidInput
from o.store import rows
from o.store.db import Conn

# Runs, evolutions and sleep-time passes that are still going belong to the server that runs them.
_ENDED_RUNS = "SELECT id FROM runs WHERE agent_id = %(agent)s AND next_action IN ('done', 'failed')"
_ENDED_EVOLUTIONS = "SELECT id FROM evolutions WHERE agent_id = %(agent)s AND completed_at IS NOT NULL"
_ATTACHED_ARCHIVES = "SELECT archive_id FROM agent_archives WHERE agent_id = %(agent)s"


_FOLDERS = "SELECT folder_id FROM agent_folders WHERE agent_id = %(agent)s"

# table -> (which of its rows belong to the agent, their order). Order of the dict: insert order.
# A new table that holds part of an agent joins here (the round-trip tests compare the whole read
# model, so one that is left out fails them); its columns need nothing more.
SCOPES: dict[str, tuple[str, str]] = {
    "agents": ("t.id = %(agent)s", "t.id"),
    "blocks": ("t.id IN (SELECT block_id FROM agent_blocks WHERE agent_id = %(agent)s)", "t.created_at, t.id"),
    "agent_blocks": ("t.agent_id = %(agent)s", "t.position, t.block_id"),
    "tools": ("t.id IN (SELECT tool_id FROM agent_tools WHERE agent_id = %(agent)s)", "t.name"),
    "agent_tools": ("t.agent_id = %(agent)s", "t.tool_id"),
    "agent_tool_env": ("t.agent_id = %(agent)s", "t.key"),
    "conversations": ("t.agent_id = %(agent)s", "t.created_at, t.id"),
    "runs": (f"t.id IN ({_ENDED_RUNS})", "t.created_at, t.id"),
    "steps": (f"t.run_id IN ({_ENDED_RUNS})", "t.created_at, t.id"),
    "messages": ("t.agent_id = %(agent)s", "t.seq"),
    # the archives attached to the agent travel with it (each a copy: the target's own archive)
    "archives": (f"t.id IN ({_ATTACHED_ARCHIVES})", "t.created_at, t.id"),
    "passages": (f"t.agent_id = %(agent)s OR t.archive_id IN ({_ATTACHED_ARCHIVES})", "t.created_at, t.id"),
    "agent_archives": ("t.agent_id = %(agent)s", "t.created_at, t.archive_id"),
    "agent_revisions": ("t.agent_id = %(agent)s", "t.number"),
    "evaluation_suites": ("t.agent_id = %(agent)s", "t.agent_id"),
    "evolutions": (f"t.id IN ({_ENDED_EVOLUTIONS})", "t.created_at, t.id"),
    "evolution_events": (f"t.evolution_id IN ({_ENDED_EVOLUTIONS})", "t.id"),
    "feedback": ("t.agent_id = %(agent)s", "t.created_at, t.id"),
    "revision_outcomes": ("t.agent_id = %(agent)s", "t.id"),
    "sleeptime_passes": ("t.agent_id = %(agent)s AND t.status <> 'running'", "t.started_at, t.id"),
    "evolution_policies": ("t.agent_id = %(agent)s", "t.agent_id"),
    "evaluator_tampering": ("t.agent_id = %(agent)s", "t.id"),
    # attached folders with their files (parsed content and embedded chunks; not the original bytes)
    "folders": (f"t.id IN ({_FOLDERS})", "t.created_at, t.id"),
    "folder_files": (f"t.folder_id IN ({_FOLDERS})", "t.created_at, t.id"),
    "file_chunks": (f"t.folder_id IN ({_FOLDERS})", "t.file_id, t.seq"),
    "agent_folders": ("t.agent_id = %(agent)s", "t.folder_id"),
    "agent_files": ("t.agent_id = %(agent)s", "t.file_id"),
}

_MESSAGE_JSON = frozenset({"content", "tool_calls", "tool_returns", "metadata"})
# vectors travel as Postgres' binary form even though pgvector gives the driver a reader for them
_RAW_TYPES = frozenset({"vector", "halfvec", "sparsevec"})
# columns never copied: which tool variables a tool run opens are sealed under the source server's
# key and bound to the agent's id, so they cannot be opened elsewhere (the import sets them anew)
_NEVER = {"agent_tool_env": frozenset({"value", "sealed"})}


@dataclass(frozen=True)
class Column:
    name: str
    # the type as Postgres names it (format_type without modifiers), e.g. "jsonb", "text[]", "vector"
    type: str
    # whether the value travels in Postgres' binary form (bytes) rather than as a decoded value
    raw: bool


def table_exists(conn: Conn, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (table,)).fetchone()
    return bool(row and row["found"])


def columns(conn: Conn, table: str) -> list[Column]:
    """The table's copyable columns: not dropped, not generated, and not filled from a sequence
    (``seq``, bigserial ids: the target numbers its rows itself, in insertion order)."""
    found = conn.execute(
        """SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type
             FROM pg_attribute a
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND a.attidentity = '' AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE 'nextval(%%'
            ORDER BY a.attnum""",
        (table,),
    ).fetchall()
    never = _NEVER.get(table, frozenset())
    return [
        Column(r["name"], r["type"], r["type"] in _RAW_TYPES or _unreadable(conn, r["type"]))
        for r in found
        if r["name"] not in never
    ]


def _unreadable(conn: Conn, type_name: str) -> bool:
    """Types the driver has no binary reader for come back as their binary form."""
    info = conn.adapters.types.get(type_name)
    return info is None or conn.adapters.get_loader(info.oid, Format.BINARY) is None


def begin_snapshot(conn: Conn) -> None:
    """Every table of an export is read from one snapshot, so the rows agree with each other."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def stream(
    conn: Conn, table: str, cols: Sequence[Column], agent_id: str, *, batch: int
) -> Iterator[list[tuple[Any, ...]]]:
    """The agent's rows of ``table`` in batches, read through a server-side cursor (a large table
    never sits whole in memory). Needs an open transaction."""
    scope, order = SCOPES[table]
    query = sql.SQL("SELECT {cols} FROM {table} t WHERE {scope} ORDER BY {order}").format(
        cols=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in cols),
        table=sql.Identifier(table),
        scope=sql.SQL(scope),  # a constant of this module
        order=sql.SQL(order),
    )
    with conn.cursor(name=f"o_bundle_{table}", binary=True, row_factory=tuple_row) as cur:
        for col in cols:
            if col.raw:
                oid = conn.adapters.types[col.type].oid if col.type in _RAW_TYPES else None
                if oid is not None:
                    cur.adapters.register_loader(oid, ByteaBinaryLoader)
        cur.itersize = batch
        cur.execute(query, {"agent": agent_id})
        while found := cur.fetchmany(batch):
            yield found


def copy_in(conn: Conn, table: str, cols: Sequence[Column], batch: Sequence[Sequence[Any]]) -> None:
    """Write rows with a binary COPY; a value the column cannot take is refused with InvalidInput
    (the caller's transaction is then rolled back whole)."""
    query = sql.SQL("COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)").format(
        table=sql.Identifier(table), cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in cols)
    )
    try:
        with conn.cursor().copy(query) as copy:
            copy.set_types(["bytea" if c.raw else c.type for c in cols])
            for row in batch:
                copy.write_row(row)
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.InvalidBinaryRepresentation) as exc:
        raise InvalidInput(f"the bundle's {table} rows cannot be stored: {_first_line(exc)}", table=table) from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"the bundle's {table} rows hold a value of the wrong type: {exc}", table=table) from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def tool_ids_by_name(conn: Conn, organization_id: str, names: list[str]) -> dict[str, str]:
    """The organization's tools of these names: name -> id."""
    found = conn.execute(
        "SELECT name, id FROM tools WHERE organization_id = %s AND name = ANY(%s)", (organization_id, names)
    ).fetchall()
    return {r["name"]: r["id"] for r in found}


def insert_messages(conn: Conn, messages: list[dict[str, Any]]) -> None:
    """Messages of an imported agent file, in order, with the times they were written at."""
    if not messages:
        return
    cols = list(messages[0])
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("INSERT INTO messages ({cols}) VALUES ({vals})").format(
                cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
                vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            ),
            [[rows.value(c, m[c], _MESSAGE_JSON) for c in cols] for m in messages],
        )


def messages_for_export(conn: Conn, organization_id: str, agent_id: str) -> list[dict[str, Any]]:
    """An agent's messages in order, without their search columns (what an agent file carries)."""
    return conn.execute(
        """SELECT id, role, content, name, tool_calls, tool_call_id, tool_returns, otid, sender_id, group_id,
                  in_context, created_at
             FROM messages WHERE organization_id = %s AND agent_id = %s ORDER BY seq""",
        (organization_id, agent_id),
    ).fetchall()


def tools_for_export(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """An agent's attached tools with their source (the API's agent view leaves the source out)."""
    return conn.execute(
        """SELECT t.* FROM agent_tools at JOIN tools t ON t.id = at.tool_id
            WHERE at.agent_id = %s ORDER BY t.name""",
        (agent_id,),
    ).fetchall()


def file_blobs(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The blob keys (and sizes) of the files of the agent's attached folders that have their bytes
    here (an imported file without them has the key ``""``), in the order the bundle carries them."""
    return conn.execute(
        f"""SELECT t.folder_id, t.blob_key, t.file_size FROM folder_files t
            WHERE t.folder_id IN ({_FOLDERS}) AND t.blob_key <> '' ORDER BY t.created_at, t.id""",
        {"agent": agent_id},
    ).fetchall()
