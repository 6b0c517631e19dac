"""The hybrid search query that archival (passages) and recall (messages) share.

How the rows are indexed (vector columns by width, weighted words) is in :mod:`o.store.passages`.

How ranking works: two candidate lists, both computed inside Postgres with every filter in their
WHERE clauses, are merged and every candidate is scored by both halves:

* full text: BM25 (k1 0.9, b 0.4) over ``search_tsv``; the words of a row have weight A and
  the words of its neighbours (context) weight D, which count ``CONTEXT_WEIGHT`` of a word.
  Document frequencies come from ``search_term_stats`` (kept exact by triggers). Query words are
  OR-ed (any shared word makes a candidate); the GIN match keeps the rarest words whose document
  counts fit ``MATCH_BUDGET``, so a query of common words never scores a large part of the corpus
  (the dropped words still add to the score of every candidate).
* vectors: the nearest rows by cosine, exactly for an owner of at most ``EXACT_MAX_ROWS`` rows and
  through HNSW above (:mod:`o.store.search_vectors`).

Files (``file_chunks``): an agent's attached folders (``FolderScope``), searched the same way with
their summed statistics, one vector group per model, a smaller ``match_budget`` and ``min_ef_search``.

Archives (passages only): an agent's search also covers the archives attached to it. BM25 uses the
statistics of the agent and its archives summed (one idf over every row searched); the vector half
runs once per embedding model (a :class:`VectorGroup`: the agent's rows with the archives of its model,
then each other model's archives with the query embedded by that model), and each candidate's cosine
is taken against the query vector of its own model.

Fusion: score = ``LEXICAL_WEIGHT`` * BM25 / (best BM25 among the candidates) + ``VECTOR_WEIGHT`` *
cosine similarity, with the exact cosine computed for candidates that only the words found. On
LoCoMo (``bench/locomo``) BM25 alone reaches turn R@10 .61 and MiniLM alone .44; reciprocal-rank
fusion with equal weights fell below BM25 (.55), RRF with the vector half weighted 0.3 gave .62
(session any@5 .883), and this score fusion gives more than either (figures in the bench output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from psycopg import sql

from o.store import archives as archive_store
from o.store import file_views
from o.store.archives import ArchiveScope
from o.store.db import Conn
from o.store.file_views import FolderScope
from o.store.filters import TagMatch, Where
from o.store.passages import (
    CONTEXT_DISCOUNT,
    EXACT_MAX_ROWS,
    TERM_FREQUENCY,
    TEXT_CONFIG,
    vector_column,
    vector_literal,
    vector_type,
)
from o.store.search_vectors import QueryVector, VectorGroup, all_vector_candidates

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

# Anserini's defaults; on LoCoMo they beat k1 1.2-2.0 / b 0.75 (bench/locomo)
BM25_K1 = 0.9
BM25_B = 0.4
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 1.0
# Most rows the full-text half scores: the GIN match keeps the query's rarest words within it.
MATCH_BUDGET = 1_000

Corpus = Literal["archival", "recall", "files"]


@dataclass(frozen=True)
class SearchFilters:
    """What a search keeps besides the agent's own rows; a filter left empty keeps everything."""

    tags: Sequence[str] = ()
    tag_match: TagMatch = "any"
    # inclusive bounds of created_at
    created_from: datetime | None = None
    created_to: datetime | None = None
    # messages only
    roles: Sequence[str] = ()
    # messages only: of these conversations (the agent's own history has none), or of the agent's own history
    conversation_ids: Sequence[str] = ()
    own_history: bool = False
    # messages only: leave out the copies a fork made (searching every conversation, each is said once)
    originals_only: bool = False

    def where(self, organization_id: str, agent_id: str | None, archive_ids: Sequence[str] = ()) -> Where:
        """The conditions over the searched table, aliased ``p``: the agent's own rows and those of
        the archives named (a search always names an owner)."""
        if agent_id is None and not archive_ids:
            raise ValueError("a search needs an agent or an archive")
        return (
            Where("p")
            .equals("organization_id", organization_id)
            .equals_or_any("agent_id", agent_id, "archive_id", archive_ids)
            .tags("tags", self.tags, match=self.tag_match)
            .in_range("created_at", self.created_from, self.created_to)
            .equals_any("role", self.roles)
            .equals_any("conversation_id", self.conversation_ids)
            .is_null("conversation_id", self.own_history)
            .lacks_key("metadata", "forked_from", self.originals_only)
        )


@dataclass(frozen=True)
class SearchSpec:
    """Where and how to search."""

    table: Literal["passages", "messages", "file_chunks"]
    corpus: Corpus
    organization_id: str
    agent_id: str
    columns: Sequence[str]
    filters: SearchFilters = field(default_factory=SearchFilters)
    # vector half: the agent's model and the query's vector (None = lexical only)
    model: str | None = None
    dim: int | None = None
    query_vector: np.ndarray | None = None
    # fusion weights of the two halves (0 turns a half off)
    lexical_weight: float = LEXICAL_WEIGHT
    vector_weight: float = VECTOR_WEIGHT
    # agents with more indexed rows than this are searched through HNSW instead of exactly
    exact_max_rows: int = EXACT_MAX_ROWS
    # archives attached to the agent (passages): searched with its rows, in the same ranking
    archives: Sequence[ArchiveScope] = ()
    folders: Sequence[FolderScope] = ()  # files: the attached folders whose completed files are searched
    match_budget: int = MATCH_BUDGET  # most rows the full-text half scores (see matched_lexemes)
    min_ef_search: int = 100  # the HNSW search width's floor (see ef_search_for)
    extra: Sequence[sql.Composable] = ()  # more selected expressions over ``p`` (files: the file's name)

    @property
    def archive_ids(self) -> list[str]:
        return [a.archive_id for a in self.archives]

    @property
    def folder_ids(self) -> list[str]:
        return [f.folder_id for f in self.folders]

    def where(self, agent_id: str | None, archive_ids: Sequence[str], folder_ids: Sequence[str]) -> Where:
        """The rows searched (``p``): chunks of the folders named, else the agent's and the archives'."""
        if self.corpus == "files":
            return file_views.chunk_scope(self.organization_id, folder_ids)
        return self.filters.where(self.organization_id, agent_id, archive_ids)


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


def bm25_idf(docs: int, df: int) -> float:
    return math.log(1.0 + (docs - df + 0.5) / (df + 0.5))


def matched_lexemes(by_rarity: Sequence[tuple[int, str]], budget: int = MATCH_BUDGET) -> list[str]:
    """The lexemes the GIN match uses: the rarest, while their document counts add up to ``budget``.

    ``by_rarity`` is (document count, lexeme), rarest first; when even the rarest exceeds the budget
    nothing is matched. Every query word still adds to the score of the rows matched: words commoner
    than the budget carry little weight and would make the query score a large part of the corpus.
    """
    matched: list[str] = []
    spent = 0
    for df, lexeme in by_rarity:
        spent += df
        if spent > budget:
            break
        matched.append(lexeme)
    return matched


def _stats_row(
    conn: Conn, corpus: Corpus, agent_id: str | None, text: str, archive_ids: Sequence[str], folder_ids: Sequence[str]
) -> Any:
    if corpus == "files":
        return file_views.summed_stats(conn, text, folder_ids)
    if archive_ids:
        return archive_store.summed_stats(conn, corpus, agent_id, text, archive_ids)
    return conn.execute(
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


def lexical_query(
    conn: Conn,
    corpus: Corpus,
    agent_id: str | None,
    text: str,
    archive_ids: Sequence[str] = (),
    folder_ids: Sequence[str] = (),
    budget: int = MATCH_BUDGET,
) -> LexicalQuery:
    """The query's lexemes with their BM25 idf, and the OR-query the GIN index matches; with
    ``archive_ids``, over the agent's rows and the archives' together; for ``files``, over the
    chunks of the folders named."""
    row = _stats_row(conn, corpus, agent_id, text, archive_ids, folder_ids)
    assert row is not None
    docs = int(row["docs"])
    present = sorted((int(df), lx) for lx, df in row["terms"] if int(df) > 0)
    if not present or docs == 0:
        return LexicalQuery([], [], None, 1.0, docs)
    matched = matched_lexemes(present, budget)
    return LexicalQuery(
        lexemes=[lx for _, lx in present],
        idfs=[bm25_idf(docs, df) for df, _ in present],
        tsquery=_tsquery_literal(matched) if matched else None,
        avg_len=max(float(row["total_len"]) / docs, 1e-6),
        docs=docs,
    )


_NO_LEXICAL = sql.SQL("SELECT NULL::text AS id, NULL::float8 AS score, NULL::bigint AS rank WHERE false")


def _owner_key(spec: SearchSpec) -> tuple[sql.Composable, list[Any]]:
    """Passages: the owners searched as the leading key of their GIN index (schema 024), so one index
    scan intersects the owners' rows with the query's words instead of matching the words in every
    agent's rows. Redundant with the scope's own condition, which stays for the other tables."""
    if spec.table != "passages":
        return sql.SQL("TRUE"), []
    owners = [o for o in (spec.agent_id, *spec.archive_ids) if o is not None]
    return sql.SQL("ARRAY[coalesce(p.agent_id, p.archive_id)] && %s::text[]"), [owners]


def _lexical_candidates(
    spec: SearchSpec, lexical: LexicalQuery, scope: Where, n: int
) -> tuple[sql.Composable, list[Any]]:
    """The ``n`` best rows by BM25 with their score and rank (a query and its parameters)."""
    owner, owner_params = _owner_key(spec)
    query = sql.SQL(
        """SELECT s.id, s.score, row_number() OVER (ORDER BY s.score DESC, s.id) AS rank
        FROM (
            SELECT p.id, sum(q.idf * t.tf * %s / (t.tf + %s * (1 - %s + %s * p.search_len / %s))) AS score
            FROM {table} p
            CROSS JOIN LATERAL (
                SELECT u.lexeme, {tf} AS tf
                FROM unnest(p.search_tsv) u
                WHERE u.lexeme = ANY(%s::text[])) t
            JOIN unnest(%s::text[], %s::float8[]) AS q(lexeme, idf) ON q.lexeme = t.lexeme
            WHERE {scope} AND {owner} AND p.search_tsv @@ %s::tsquery
            GROUP BY p.id
            ORDER BY score DESC, p.id
            LIMIT %s) s"""
    ).format(table=sql.Identifier(spec.table), tf=TERM_FREQUENCY, scope=scope.clause(), owner=owner)
    params = [
        BM25_K1 + 1,
        BM25_K1,
        BM25_B,
        BM25_B,
        lexical.avg_len,
        CONTEXT_DISCOUNT,
        # only the query's words of each row are joined with their idf (not every word of the row)
        lexical.lexemes,
        lexical.lexemes,
        lexical.idfs,
        *scope.params,
        *owner_params,
        lexical.tsquery,
        n,
    ]
    return query, params


def _distance(groups: Sequence[VectorGroup]) -> tuple[sql.Composable, list[Any]]:
    """The cosine distance of a candidate to the query of its model (NULL for a row of a model no
    group has)."""
    if not groups:
        return sql.SQL("NULL::float8"), []
    # Candidates found only by their words get their exact cosine too, so both halves score
    # every candidate (a row of another model has no comparable vector and scores words only).
    branches: list[sql.Composable] = []
    params: list[Any] = []
    for group in groups:
        query = group.query
        branches.append(
            sql.SQL(
                "WHEN p.embedding_dim = %s AND p.embedding_model IS NOT DISTINCT FROM %s "
                "THEN p.{column} <=> %s::{vtype}"
            ).format(column=sql.Identifier(vector_column(query.dim)), vtype=sql.SQL(vector_type(query.dim)))
        )
        params += [query.dim, query.model, vector_literal(query.vector, query.dim)]
    expression = sql.SQL("coalesce(c.vdist, CASE {} END)").format(sql.SQL(" ").join(branches))
    return expression, params


_FUSION = sql.SQL(
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
)


def query_vector(spec: SearchSpec) -> QueryVector | None:
    """The vector half of ``spec``, or None when it is off (no vector, or weight 0)."""
    if spec.query_vector is None or spec.dim is None or spec.vector_weight <= 0:
        return None
    return QueryVector(spec.query_vector, spec.dim, spec.model)


def vector_groups(spec: SearchSpec) -> list[VectorGroup]:
    """The rows ``spec`` compares by vector, one group per model: the agent's own rows with the
    archives of its model, then each other model's archives (with the query embedded by that model)."""
    if spec.vector_weight <= 0:
        return []
    groups: dict[tuple[str | None, int], VectorGroup] = {}
    own = query_vector(spec)
    if own is not None:
        groups[(own.model, own.dim)] = VectorGroup(own, spec.agent_id)
    for archive in spec.archives:
        if archive.query_vector is None:
            continue
        key = (archive.model, archive.dim)
        group = groups.get(key) or VectorGroup(QueryVector(archive.query_vector, archive.dim, archive.model), None)
        groups[key] = VectorGroup(group.query, group.agent_id, (*group.archive_ids, archive.archive_id))
    for folder in spec.folders:
        if folder.query_vector is None:
            continue
        key = (folder.model, folder.dim)
        group = groups.get(key) or VectorGroup(QueryVector(folder.query_vector, folder.dim, folder.model), None)
        groups[key] = VectorGroup(group.query, None, (), (*group.folder_ids, folder.folder_id))
    return list(groups.values())


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
    lexical = lexical_query(
        conn, spec.corpus, spec.agent_id, query_text, spec.archive_ids, spec.folder_ids, spec.match_budget
    )
    use_lexical = lexical.tsquery is not None and spec.lexical_weight > 0
    groups = vector_groups(spec)
    if not use_lexical and not groups:
        return []
    scope = spec.where(spec.agent_id, spec.archive_ids, spec.folder_ids)
    vector_ids, distances = all_vector_candidates(conn, spec, groups, n, lexical.docs)
    lex, lex_params = _lexical_candidates(spec, lexical, scope, n) if use_lexical else (_NO_LEXICAL, [])
    distance, distance_params = _distance(groups)
    query = _FUSION.format(
        lex=lex,
        cols=sql.SQL(", ").join([*(sql.SQL("p.{}").format(sql.Identifier(c)) for c in spec.columns), *spec.extra]),
        table=sql.Identifier(spec.table),
        distance=distance,
    )
    params = [*lex_params, vector_ids, distances, *distance_params, spec.lexical_weight, spec.vector_weight, top_k]
    return conn.execute(query, params).fetchall()
