"""SQL for indexing and searching the message history (recall memory).

Messages are written by the agent loop without search data; ``search_tsv IS NULL`` marks a
message not indexed yet. Indexing fills ``search_tsv``/``search_len`` and one vector column (see
:mod:`o.store.passages` for the layout) in one UPDATE that only touches rows still unindexed,
so two indexers racing on the same messages write each row once and the BM25 statistics stay
exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from o.store import passages
from o.store.db import Conn

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

MESSAGE_COLUMNS = (
    "id",
    "organization_id",
    "agent_id",
    "seq",
    "role",
    "text",
    "name",
    "tool_calls",
    "run_id",
    "step_id",
    "created_at",
    "conversation_id",
)


def pending(conn: Conn, agent_id: str, limit: int) -> list[dict[str, Any]]:
    """The agent's oldest unindexed messages, in order."""
    return conn.execute(
        "SELECT id, seq, role, text, tool_calls FROM messages "
        "WHERE agent_id = %s AND search_tsv IS NULL ORDER BY seq LIMIT %s",
        (agent_id, limit),
    ).fetchall()


def preceding(conn: Conn, agent_id: str, seq: int, roles: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` messages with one of ``roles`` before ``seq``, oldest first."""
    rows = conn.execute(
        "SELECT id, seq, role, text, tool_calls FROM messages "
        "WHERE agent_id = %s AND seq < %s AND role = ANY(%s) ORDER BY seq DESC LIMIT %s",
        (agent_id, seq, list(roles), limit),
    ).fetchall()
    rows.reverse()
    return rows


@dataclass(frozen=True)
class IndexedMessage:
    id: str
    # the text that was indexed (the row is skipped if its text changed meanwhile)
    source_text: str
    search_text: str
    context: str
    embedding: np.ndarray | None


def write_index(conn: Conn, items: Sequence[IndexedMessage], *, model: str | None, dim: int | None) -> int:
    """Store search data for messages still unindexed; returns how many rows were written."""
    searchable = [i for i in items if i.embedding is not None]
    empty = [i for i in items if i.embedding is None]
    written = 0
    if searchable:
        assert dim is not None
        written += _write_searchable(conn, searchable, model=model, dim=dim)
    if empty:
        written += _mark_empty(conn, empty)
    return written


def _write_searchable(conn: Conn, items: Sequence[IndexedMessage], *, model: str | None, dim: int) -> int:
    query = sql.SQL(
        """UPDATE messages m
           SET search_tsv = x.tsv, search_len = {length}, embedding_dim = %s, embedding_model = %s,
               {column} = x.vec::{vtype}
           FROM (SELECT i.id, i.source, i.vec, {tsv} AS tsv
                 FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %b::vector[])
                      AS i(id, source, search, context, vec)) x
           WHERE m.id = x.id AND m.search_tsv IS NULL AND m.text = x.source"""
    ).format(
        length=passages.document_length(sql.SQL("x.tsv")),
        column=sql.Identifier(passages.vector_column(dim)),
        vtype=sql.SQL(passages.vector_type(dim)),
        tsv=passages.weighted_tsvector(sql.SQL("i.search"), sql.SQL("i.context")),
    )
    columns = (
        [i.id for i in items],
        [i.source_text for i in items],
        [i.search_text for i in items],
        [i.context for i in items],
        passages.vector_params(conn, [i.embedding for i in items if i.embedding is not None], dim),
    )
    return conn.execute(query, (passages.CONTEXT_DISCOUNT, dim, model, *columns)).rowcount


def _mark_empty(conn: Conn, items: Sequence[IndexedMessage]) -> int:
    """Nothing to search in these (system prompts, empty tool calls): mark them done."""
    return conn.execute(
        """UPDATE messages m SET search_tsv = ''::tsvector, search_len = 0
           FROM unnest(%s::text[], %s::text[]) AS x(id, source)
           WHERE m.id = x.id AND m.search_tsv IS NULL AND m.text = x.source""",
        ([i.id for i in items], [i.source_text for i in items]),
    ).rowcount
