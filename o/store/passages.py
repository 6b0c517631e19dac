"""SQL for archival passages, and how a row (passage or message) is indexed for search.

How vectors of different sizes coexist: ``passages`` (and ``messages``) have one vector column per
supported width, each with its own HNSW cosine index: ``embedding_384``, ``embedding_768``,
``embedding_1024``, ``embedding_1536`` (pgvector ``vector``) and ``embedding_3072`` (``halfvec``,
since HNSW indexes ``vector`` only up to 2,000 dims). A model of another size (e.g. 256 or 512) is
stored zero-padded in the next wider column; padding with zeros changes no cosine similarity.
``embedding_dim`` and ``embedding_model`` record what each row holds, and the vector half of a
search reads only rows of the model the agent uses now. Rows whose columns are NULL are not in the
HNSW index at all, so an index costs nothing for widths nobody uses.

Which rows are in the HNSW graph (schema 025): only those of owners (agent or archive) with more than
``EXACT_MAX_ROWS`` indexed rows, flagged ``in_graph``; the indexes are partial over them. A smaller
owner is compared exactly (:mod:`o.store.search_vectors`), so its rows skip the graph insert, the
largest part of an insert's cost. ``insert_many`` flags its rows when the owner's count goes over
the threshold, and a trigger keeps the rule on every insert path (the crossing adds the owner's
earlier rows once). An owner that shrinks keeps its rows in the graph.

How words are indexed: ``search_tsv`` holds the row's own words with weight A and the words of its
neighbours (context) with weight D; a context word counts ``CONTEXT_WEIGHT`` of a word of the row
itself, in ``search_len`` as in the term frequencies of a search (:mod:`o.store.search`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.errors import InvalidInput
from o.store.db import Conn
from o.store.filters import TagMatch, Where
from o.store.pages import Page, fetch_page

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

SUPPORTED_WIDTHS = (384, 768, 1024, 1536, 3072)
HALFVEC_WIDTHS = frozenset({3072})

# Up to this many indexed rows an owner's vectors are compared exactly; above it the HNSW graph holds
# its rows and answers. schema 025's o_graph_min_rows() says the same number.
EXACT_MAX_ROWS = 15_000

# A context word counts this much of a word of the passage itself (measured on LoCoMo: 0.3).
CONTEXT_WEIGHT = 0.3
TEXT_CONFIG = "english"

# The weighted frequency of one lexeme ``u`` of a tsvector (an element of ``unnest(tsv)``): a context
# (weight D) occurrence counts CONTEXT_WEIGHT. Its one parameter is CONTEXT_DISCOUNT.
TERM_FREQUENCY = sql.SQL("cardinality(u.positions) - %s * cardinality(array_positions(u.weights, 'D'))")
CONTEXT_DISCOUNT = 1.0 - CONTEXT_WEIGHT

PASSAGE_COLUMNS = (
    "id",
    "organization_id",
    "agent_id",
    "archive_id",
    "text",
    "tags",
    "metadata",
    "embedding_model",
    "embedding_dim",
    "created_at",
    "updated_at",
)
_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, PASSAGE_COLUMNS))


def document_length(tsv: sql.Composable) -> sql.Composable:
    """``search_len`` of the tsvector ``tsv``: the sum of its weighted term frequencies (one parameter)."""
    return sql.SQL("(SELECT coalesce(sum({tf}), 0) FROM unnest({tsv}) u)").format(tf=TERM_FREQUENCY, tsv=tsv)


def weighted_tsvector(text: sql.Composable, context: sql.Composable) -> sql.Composable:
    """The tsvector of a row: its own words at weight A, its neighbours' at weight D."""
    return sql.SQL(
        "setweight(to_tsvector({cfg}, {text}), 'A') || setweight(to_tsvector({cfg}, {context}), 'D')"
    ).format(cfg=sql.Literal(TEXT_CONFIG), text=text, context=context)


def vector_width(dim: int) -> int:
    """The column width that stores vectors of ``dim`` numbers."""
    for width in SUPPORTED_WIDTHS:
        if dim <= width:
            return width
    raise InvalidInput(
        f"embedding_dim {dim} is larger than the widest supported vector ({SUPPORTED_WIDTHS[-1]})",
        embedding_dim=dim,
        supported=list(SUPPORTED_WIDTHS),
    )


def vector_column(dim: int) -> str:
    return f"embedding_{vector_width(dim)}"


def vector_type(dim: int) -> str:
    return "halfvec" if vector_width(dim) in HALFVEC_WIDTHS else "vector"


def checked_vector(vector: np.ndarray, dim: int) -> np.ndarray:
    """A vector as float32 of ``dim`` finite numbers, zero-padded to its column's width."""
    import numpy as np

    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    if flat.shape[0] != dim:
        raise InvalidInput(
            f"embedding has {flat.shape[0]} dimensions but the agent's embedding_dim is {dim}",
            expected_dim=dim,
            actual_dim=int(flat.shape[0]),
        )
    if not np.all(np.isfinite(flat)):
        raise InvalidInput("embedding contains NaN or infinite values")
    width = vector_width(dim)
    if width > dim:
        flat = np.concatenate([flat, np.zeros(width - dim, dtype=np.float32)])
    return flat


def vector_params(conn: Conn, vectors: Sequence[np.ndarray], dim: int) -> list[np.ndarray]:
    """Checked vectors to pass as a binary ``vector[]`` parameter (``%b``): formatting 384 numbers as
    text cost ~150 µs a row in Python and parsing them back ~40 µs in Postgres. A connection opened
    before the migrations created the type (``o migrate``'s pool) learns it here."""
    if conn.adapters.types.get("vector") is None:
        from pgvector.psycopg import register_vector

        register_vector(conn)
    return [checked_vector(v, dim) for v in vectors]


def vector_literal(vector: np.ndarray, dim: int) -> str:
    """A vector as pgvector text, zero-padded to its column's width."""
    flat = checked_vector(vector, dim)
    return "[" + (_number_format(flat.shape[0]) % tuple(flat.tolist())) + "]"


@functools.cache
def _number_format(width: int) -> str:
    # one %-format for the whole vector is about a third faster than formatting each number
    return ",".join(["%.7g"] * width)


@dataclass(frozen=True)
class NewPassage:
    text: str
    embedding: np.ndarray
    # words of neighbouring passages, indexed at CONTEXT_WEIGHT
    context: str = ""
    tags: Sequence[str] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    id: str | None = None


def stored_embedding(conn: Conn, agent_id: str) -> tuple[str | None, int] | None:
    """(model, dim) of the vectors an agent's archival memory holds, or None if it holds none."""
    row = conn.execute(
        "SELECT embedding_model, embedding_dim FROM passages WHERE agent_id = %s AND embedding_dim IS NOT NULL LIMIT 1",
        (agent_id,),
    ).fetchone()
    if row is None:
        return None
    return row["embedding_model"], int(row["embedding_dim"])


def insert_many(
    conn: Conn,
    organization_id: str,
    agent_id: str | None,
    passages: Sequence[NewPassage],
    *,
    model: str,
    dim: int,
    new_id: Any,
    archive_id: str | None = None,
) -> list[dict[str, Any]]:
    """Insert passages in one statement, owned by the agent or else by the archive; returns the
    stored rows in input order. The rows join the HNSW graph when the owner's indexed rows go over
    ``EXACT_MAX_ROWS`` with them (and schema 025's trigger adds the owner's earlier rows when this
    call crosses it); below, they skip the graph insert."""
    if not passages:
        return []
    ids = [p.id or new_id() for p in passages]
    query = sql.SQL(
        """
        WITH input AS (
            SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::jsonb[],
                                 %s::timestamptz[], %b::vector[])
                WITH ORDINALITY AS t(id, text, context, tags, metadata, created_at, vec, ord)
        ), prepared AS (
            SELECT i.*, {tsv} AS tsv
            FROM input i
        ), owner AS (
            -- over the threshold with these rows: they go into the HNSW graph (schema 025)
            SELECT coalesce((SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'),
                            (SELECT docs FROM archive_corpus_stats WHERE archive_id = %s AND %s::text IS NULL),
                            0) + %s > o_graph_min_rows() AS in_graph
        ), inserted AS (
            INSERT INTO passages (id, organization_id, agent_id, archive_id, text, tags, metadata, embedding_model,
                                  embedding_dim, {column}, search_tsv, search_len, in_graph, created_at, updated_at)
            SELECT p.id, %s, %s, %s, p.text,
                   ARRAY(SELECT jsonb_array_elements_text(p.tags)), p.metadata, %s, %s,
                   p.vec::{vtype}, p.tsv,
                   {length}, (SELECT in_graph FROM owner),
                   coalesce(p.created_at, clock_timestamp()), coalesce(p.created_at, clock_timestamp())
            FROM prepared p ORDER BY p.ord
            RETURNING {returning}
        )
        SELECT * FROM inserted
        """
    ).format(
        tsv=weighted_tsvector(sql.SQL("i.text"), sql.SQL("i.context")),
        column=sql.Identifier(vector_column(dim)),
        vtype=sql.SQL(vector_type(dim)),
        length=document_length(sql.SQL("p.tsv")),
        returning=_COLUMNS,
    )
    columns = (
        ids,
        [p.text for p in passages],
        [p.context for p in passages],
        [Jsonb(list(p.tags)) for p in passages],
        [Jsonb(p.metadata) for p in passages],
        [p.created_at for p in passages],
        vector_params(conn, [p.embedding for p in passages], dim),
    )
    owner = (agent_id, archive_id, agent_id, len(passages))
    rows = conn.execute(
        query, (*columns, *owner, organization_id, agent_id, archive_id, model, dim, CONTEXT_DISCOUNT)
    ).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in ids]


def get(conn: Conn, organization_id: str, agent_id: str, passage_id: str) -> dict[str, Any] | None:
    return conn.execute(
        sql.SQL("SELECT {} FROM passages WHERE id = %s AND organization_id = %s AND agent_id = %s").format(_COLUMNS),
        (passage_id, organization_id, agent_id),
    ).fetchone()


def delete(conn: Conn, organization_id: str, agent_id: str, passage_id: str) -> bool:
    cur = conn.execute(
        "DELETE FROM passages WHERE id = %s AND organization_id = %s AND agent_id = %s",
        (passage_id, organization_id, agent_id),
    )
    return cur.rowcount > 0


def count(conn: Conn, organization_id: str, agent_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM passages WHERE organization_id = %s AND agent_id = %s",
        (organization_id, agent_id),
    ).fetchone()
    return int(row["n"]) if row else 0


def list_page(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    page: Page,
    *,
    text_contains: str | None = None,
    tags: Sequence[str] | None = None,
    tag_match: TagMatch = "any",
) -> list[dict[str, Any]]:
    """Passages in creation order between cursors; optional substring and tag filters."""
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals("agent_id", agent_id)
        .contains("text", text_contains)
        .tags("tags", tags, match=tag_match)
    )
    return fetch_page(
        conn, table="passages", columns=_COLUMNS, scope=where.clause(), scope_params=where.params, page=page
    )
