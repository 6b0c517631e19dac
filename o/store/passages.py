"""SQL for archival passages, and the hybrid search query that archival and recall share.

How vectors of different sizes coexist: ``passages`` (and ``messages``) have one vector column per
supported width, each with its own HNSW cosine index: ``embedding_384``, ``embedding_768``,
``embedding_1024``, ``embedding_1536`` (pgvector ``vector``) and ``embedding_3072`` (``halfvec``,
since HNSW indexes ``vector`` only up to 2,000 dims). A model of another size (e.g. 256 or 512) is
stored zero-padded in the next wider column; padding with zeros changes no cosine similarity.
``embedding_dim`` and ``embedding_model`` record what each row holds, and the vector half of a
search reads only rows of the model the agent uses now. Rows whose columns are NULL are not in the
HNSW index at all, so an index costs nothing for widths nobody uses.

How ranking works: two candidate lists, both computed inside Postgres with every filter in their
WHERE clauses, are merged and every candidate is scored by both halves:

* full text: BM25 (k1 0.9, b 0.4) over ``search_tsv``; the words of a passage have weight A and
  the words of its neighbours (context) weight D, which count ``CONTEXT_WEIGHT`` of a word.
  Document frequencies come from ``search_term_stats`` (kept exact by triggers). Query words are
  OR-ed (any shared word makes a candidate); the GIN match keeps the rarest words whose document
  counts fit ``MATCH_BUDGET``, so a query of common words never scores a large part of the corpus
  (the dropped words still add to the score of every candidate).
* vectors: an agent with at most ``EXACT_MAX_ROWS`` rows is compared exactly (the planner walks
  the agent's rows); above that the HNSW index answers, with ``hnsw.ef_search`` set for the query
  and pgvector's iterative scan (``SET LOCAL`` via ``set_config(..., true)``), so filters do not
  starve the result. Limitation: HNSW filters after the graph walk, so a mid-sized agent in a
  table dominated by other agents may get fewer than ``n`` vector candidates (the lexical half
  and iterative scanning soften this).

Fusion: score = ``LEXICAL_WEIGHT`` * BM25 / (best BM25 among the candidates) + ``VECTOR_WEIGHT`` *
cosine similarity, with the exact cosine computed for candidates that only the words found. On
LoCoMo (``bench/locomo``) BM25 alone reaches turn R@10 .61 and MiniLM alone .44; reciprocal-rank
fusion with equal weights fell below BM25 (.55), RRF with the vector half weighted 0.3 gave .62
(session any@5 .883), and this score fusion gives more than either (figures in the bench output).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from o.errors import InvalidInput
from o.store.db import Conn
from o.store.pages import Page, fetch_page

SUPPORTED_WIDTHS = (384, 768, 1024, 1536, 3072)
HALFVEC_WIDTHS = frozenset({3072})

# Anserini's defaults; on LoCoMo they beat k1 1.2-2.0 / b 0.75 (bench/locomo)
BM25_K1 = 0.9
BM25_B = 0.4
# A context word counts this much of a word of the passage itself (measured on LoCoMo: 0.3).
CONTEXT_WEIGHT = 0.3
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 1.0
# Most rows the full-text half scores: the GIN match keeps the query's rarest words within it.
MATCH_BUDGET = 1_000
# Up to this many rows an agent's vectors are compared exactly; above it the HNSW index answers.
EXACT_MAX_ROWS = 2_000
TEXT_CONFIG = "english"

Corpus = Literal["archival", "recall"]
TagMatch = Literal["any", "all"]

PASSAGE_COLUMNS = (
    "id",
    "organization_id",
    "agent_id",
    "text",
    "tags",
    "metadata",
    "embedding_model",
    "embedding_dim",
    "created_at",
    "updated_at",
)


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


def vector_literal(vector: np.ndarray, dim: int) -> str:
    """A vector as pgvector text, zero-padded to its column's width."""
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
    return "[" + (_number_format(width) % tuple(flat.tolist())) + "]"


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
    agent_id: str,
    passages: Sequence[NewPassage],
    *,
    model: str,
    dim: int,
    new_id: Any,
) -> list[dict[str, Any]]:
    """Insert passages in one statement; returns the stored rows in input order."""
    if not passages:
        return []
    column = vector_column(dim)
    ids = [p.id or new_id() for p in passages]
    texts = [p.text for p in passages]
    contexts = [p.context for p in passages]
    tags = [Jsonb(list(p.tags)) for p in passages]
    metadata = [Jsonb(p.metadata) for p in passages]
    created = [p.created_at for p in passages]
    vectors = [vector_literal(p.embedding, dim) for p in passages]
    query = sql.SQL(
        """
        WITH input AS (
            SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::jsonb[],
                                 %s::timestamptz[], %s::text[])
                WITH ORDINALITY AS t(id, text, context, tags, metadata, created_at, vec, ord)
        ), prepared AS (
            SELECT i.*, setweight(to_tsvector({cfg}, i.text), 'A')
                        || setweight(to_tsvector({cfg}, i.context), 'D') AS tsv
            FROM input i
        ), inserted AS (
            INSERT INTO passages (id, organization_id, agent_id, text, tags, metadata, embedding_model,
                                  embedding_dim, {column}, search_tsv, search_len, created_at, updated_at)
            SELECT p.id, %s, %s, p.text,
                   ARRAY(SELECT jsonb_array_elements_text(p.tags)), p.metadata, %s, %s,
                   p.vec::{vtype}, p.tsv,
                   (SELECT coalesce(sum(cardinality(u.positions)
                                        - %s * cardinality(array_positions(u.weights, 'D'))), 0)
                    FROM unnest(p.tsv) u),
                   coalesce(p.created_at, clock_timestamp()), coalesce(p.created_at, clock_timestamp())
            FROM prepared p ORDER BY p.ord
            RETURNING {returning}
        )
        SELECT * FROM inserted
        """
    ).format(
        cfg=sql.Literal(TEXT_CONFIG),
        column=sql.Identifier(column),
        vtype=sql.SQL(vector_type(dim)),
        returning=sql.SQL(", ").join(map(sql.Identifier, PASSAGE_COLUMNS)),
    )
    rows = conn.execute(
        query,
        (
            ids,
            texts,
            contexts,
            tags,
            metadata,
            created,
            vectors,
            organization_id,
            agent_id,
            model,
            dim,
            1.0 - CONTEXT_WEIGHT,
        ),
    ).fetchall()
    by_id = {row["id"]: row for row in rows}
    return [by_id[i] for i in ids]


def get(conn: Conn, organization_id: str, agent_id: str, passage_id: str) -> dict[str, Any] | None:
    return conn.execute(
        sql.SQL("SELECT {cols} FROM passages WHERE id = %s AND organization_id = %s AND agent_id = %s").format(
            cols=sql.SQL(", ").join(map(sql.Identifier, PASSAGE_COLUMNS))
        ),
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
    conds: list[sql.Composable] = [sql.SQL("organization_id = %s AND agent_id = %s")]
    params: list[Any] = [organization_id, agent_id]
    if text_contains:
        conds.append(sql.SQL("strpos(lower(text), lower(%s)) > 0"))
        params.append(text_contains)
    if tags:
        conds.append(sql.SQL("tags @> %s::text[]" if tag_match == "all" else "tags && %s::text[]"))
        params.append(list(tags))
    return fetch_page(
        conn,
        table="passages",
        key="created_at",
        columns=sql.SQL(", ").join(map(sql.Identifier, PASSAGE_COLUMNS)),
        scope=sql.SQL(" AND ").join(conds),
        scope_params=tuple(params),
        page=page,
    )


# ---------------------------------------------------------------------------------------------
# Hybrid search, shared by archival (passages) and recall (messages)


@dataclass(frozen=True)
class SearchSpec:
    """Where and how to search; filters are SQL over the table aliased ``p``."""

    table: Literal["passages", "messages"]
    corpus: Corpus
    organization_id: str
    agent_id: str
    columns: Sequence[str]
    filters: Sequence[tuple[str, Sequence[Any]]] = ()
    # vector half: the agent's model and the query's vector (None = lexical only)
    model: str | None = None
    dim: int | None = None
    query_vector: np.ndarray | None = None
    # fusion weights of the two halves (0 turns a half off)
    lexical_weight: float = LEXICAL_WEIGHT
    vector_weight: float = VECTOR_WEIGHT
    # agents with more indexed rows than this are searched through HNSW instead of exactly
    exact_max_rows: int = EXACT_MAX_ROWS


@dataclass(frozen=True)
class LexicalQuery:
    lexemes: list[str]
    idfs: list[float]
    tsquery: str | None
    avg_len: float
    # indexed documents of the agent in this corpus (also steers the vector plan)
    docs: int


def _tsquery_literal(lexemes: Sequence[str]) -> str:
    quoted = ("'" + lx.replace("\\", "\\\\").replace("'", "''") + "'" for lx in lexemes)
    return " | ".join(quoted)


def lexical_query(conn: Conn, corpus: Corpus, agent_id: str, text: str) -> LexicalQuery:
    """The query's lexemes with their BM25 idf, and the OR-query the GIN index matches."""
    row = conn.execute(
        """
        SELECT coalesce(s.docs, 0) AS docs, coalesce(s.total_len, 0) AS total_len,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(q.lexeme, coalesce(t.df, 0))), '[]'::jsonb)
                FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector(%s::regconfig, %s))) q
                LEFT JOIN search_term_stats t
                       ON t.agent_id = %s AND t.corpus = %s AND t.lexeme = q.lexeme) AS terms
        FROM (SELECT 1) one
        LEFT JOIN search_corpus_stats s ON s.agent_id = %s AND s.corpus = %s
        """,
        (TEXT_CONFIG, text, agent_id, corpus, agent_id, corpus),
    ).fetchone()
    assert row is not None
    docs = int(row["docs"])
    present = sorted(((int(df), lx) for lx, df in row["terms"] if int(df) > 0), key=lambda t: (t[0], t[1]))
    if not present or docs == 0:
        return LexicalQuery([], [], None, 1.0, docs)
    avg_len = max(float(row["total_len"]) / docs, 1e-6)
    lexemes = [lx for _, lx in present]
    idfs = [math.log(1.0 + (docs - df + 0.5) / (df + 0.5)) for df, _ in present]
    # Match on the rarest words while the budget lasts; every query word still adds to the score of
    # the rows matched. Words commoner than the budget carry little weight and would make the query
    # score a large part of the corpus.
    matched: list[str] = []
    spent = 0
    for df, lx in present:
        if spent + df > MATCH_BUDGET and (matched or df > MATCH_BUDGET):
            break
        matched.append(lx)
        spent += df
    tsquery = _tsquery_literal(matched) if matched else None
    return LexicalQuery(lexemes, idfs, tsquery, avg_len, docs)


def ef_search_for(candidates: int) -> int:
    # pgvector caps ef_search at 1000; below ~100 recall on hard data drops (PLATFORM.md)
    return max(100, min(1000, 2 * candidates))


def _vector_candidates(
    conn: Conn, spec: SearchSpec, scope: sql.Composable, scope_params: list[Any], n: int, docs: int
) -> tuple[list[str], list[float]]:
    """The ``n`` nearest rows by cosine distance: exact for small agents, HNSW for large ones."""
    assert spec.dim is not None and spec.query_vector is not None
    column = sql.Identifier(vector_column(spec.dim))
    vtype = sql.SQL(vector_type(spec.dim))
    large = docs > spec.exact_max_rows
    literal = vector_literal(spec.query_vector, spec.dim)
    query = sql.SQL(
        """SELECT p.id, p.{column} <=> %s::{vtype} AS distance
           FROM {table} p
           WHERE {scope} AND p.embedding_dim = %s AND p.embedding_model IS NOT DISTINCT FROM %s
           ORDER BY p.{column} <=> %s::{vtype}
           LIMIT %s"""
    ).format(column=column, vtype=vtype, table=sql.Identifier(spec.table), scope=scope)
    params = (literal, *scope_params, spec.dim, spec.model, literal, n)
    if not large:
        rows = conn.execute(query, params).fetchall()
    else:
        # The planner prices a sort over an agent's rows below the HNSW scan long after the scan is
        # faster; with sorts and sequential scans off for this one statement, HNSW gives the order.
        # The three statements go in one round trip.
        with conn.pipeline():
            conn.execute(
                "SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true), "
                "set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                (str(ef_search_for(n)),),
            )
            cur = conn.execute(query, params)
            conn.execute("SELECT set_config('enable_sort', 'on', true), set_config('enable_seqscan', 'on', true)")
            rows = cur.fetchall()
    # relaxed_order may return near-ties slightly out of order
    rows.sort(key=lambda r: (r["distance"], r["id"]))
    return [r["id"] for r in rows], [float(r["distance"]) for r in rows]


def hybrid_search(
    conn: Conn,
    spec: SearchSpec,
    query_text: str,
    *,
    top_k: int,
    candidates: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``spec.table`` ranked by fused BM25 and cosine scores, best first.

    Each row carries ``score`` (fused), ``lexical_rank``/``lexical_score`` (NULL unless a word
    matched), ``vector_rank`` (NULL unless among the nearest vectors) and ``vector_distance``
    (cosine distance; NULL when the row holds no vector of the agent's model).
    """
    n = candidates or max(3 * top_k, 50)
    lexical = lexical_query(conn, spec.corpus, spec.agent_id, query_text)
    use_lexical = lexical.tsquery is not None and spec.lexical_weight > 0
    use_vector = spec.query_vector is not None and spec.dim is not None and spec.vector_weight > 0
    if not use_lexical and not use_vector:
        return []

    where: list[sql.Composable] = [sql.SQL("p.organization_id = %s AND p.agent_id = %s")]
    where_params: list[Any] = [spec.organization_id, spec.agent_id]
    for clause, params in spec.filters:
        where.append(sql.SQL(clause))  # type: ignore[arg-type]  # clauses are module constants
        where_params.extend(params)
    scope = sql.SQL(" AND ").join(where)

    vector_ids: list[str] = []
    distances: list[float] = []
    if use_vector:
        vector_ids, distances = _vector_candidates(conn, spec, scope, where_params, n, lexical.docs)

    table = sql.Identifier(spec.table)
    cols = sql.SQL(", ").join(sql.SQL("p.{}").format(sql.Identifier(c)) for c in spec.columns)
    params: list[Any] = []
    if use_lexical:
        lex = sql.SQL(
            """SELECT s.id, s.score, row_number() OVER (ORDER BY s.score DESC, s.id) AS rank
            FROM (
                SELECT p.id, sum(q.idf * t.tf * %s / (t.tf + %s * (1 - %s + %s * p.search_len / %s))) AS score
                FROM {table} p
                CROSS JOIN LATERAL (
                    SELECT u.lexeme, cardinality(u.positions)
                           - %s * cardinality(array_positions(u.weights, 'D')) AS tf
                    FROM unnest(p.search_tsv) u) t
                JOIN unnest(%s::text[], %s::float8[]) AS q(lexeme, idf) ON q.lexeme = t.lexeme
                WHERE {scope} AND p.search_tsv @@ %s::tsquery
                GROUP BY p.id
                ORDER BY score DESC, p.id
                LIMIT %s) s"""
        ).format(table=table, scope=scope)
        params += [
            BM25_K1 + 1,
            BM25_K1,
            BM25_B,
            BM25_B,
            lexical.avg_len,
            1.0 - CONTEXT_WEIGHT,
            lexical.lexemes,
            lexical.idfs,
            *where_params,
            lexical.tsquery,
            n,
        ]
    else:
        lex = sql.SQL("SELECT NULL::text AS id, NULL::float8 AS score, NULL::bigint AS rank WHERE false")
    if use_vector:
        assert spec.dim is not None and spec.query_vector is not None
        # Candidates found only by their words get their exact cosine too, so both halves score
        # every candidate (a row of another model has no comparable vector and scores words only).
        distance = sql.SQL(
            "coalesce(c.vdist, CASE WHEN p.embedding_dim = %s AND p.embedding_model IS NOT DISTINCT FROM %s "
            "THEN p.{column} <=> %s::{vtype} END)"
        ).format(column=sql.Identifier(vector_column(spec.dim)), vtype=sql.SQL(vector_type(spec.dim)))
        distance_params: list[Any] = [spec.dim, spec.model, vector_literal(spec.query_vector, spec.dim)]
    else:
        distance = sql.SQL("NULL::float8")
        distance_params = []
    query = sql.SQL(
        """WITH lex AS ({lex}),
        vec AS (
            SELECT v.id, v.distance, v.rank
            FROM unnest(%s::text[], %s::float8[]) WITH ORDINALITY AS v(id, distance, rank)),
        cand AS (
            SELECT coalesce(l.id, v.id) AS id, l.score AS lexical_score, l.rank AS lexical_rank,
                   v.rank AS vector_rank, v.distance AS vdist
            FROM lex l FULL JOIN vec v ON v.id = l.id),
        scored AS (
            SELECT c.id, c.lexical_score, c.lexical_rank, c.vector_rank, {distance} AS vector_distance
            FROM cand c JOIN {table} p ON p.id = c.id),
        fused AS (
            SELECT s.*,
                   %s * coalesce(s.lexical_score / nullif(max(s.lexical_score) OVER (), 0), 0)
                   + %s * coalesce(1 - s.vector_distance, 0) AS score
            FROM scored s
            ORDER BY score DESC, id
            LIMIT %s)
        SELECT {cols}, f.score, f.lexical_rank, f.lexical_score, f.vector_rank, f.vector_distance
        FROM fused f JOIN {table} p ON p.id = f.id
        ORDER BY f.score DESC, f.id"""
    ).format(lex=lex, cols=cols, table=table, distance=distance)
    params += [vector_ids, distances, *distance_params, spec.lexical_weight, spec.vector_weight, top_k]
    return conn.execute(query, params).fetchall()
