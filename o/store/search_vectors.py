"""The vector half of hybrid search (:mod:`o.store.search`): the rows nearest the query, exactly or
through HNSW.

Which plan, by the size of what is searched (the agent's indexed rows), not by the table's:

* up to ``EXACT_MAX_ROWS`` rows, every distance is computed: the owner's rows come by their btree
  (``passages_agent_id``) and a top-N sort keeps the nearest. Recall is 1 and the cost grows with the owner's
  rows only, however large the table (schema 024 also keeps the vectors out of TOAST). The subquery
  is a fence: without it the planner may walk the whole table's HNSW graph and filter afterwards,
  which for one agent among a hundred visits a hundred rows for each one it keeps
  (bench/search_scale.py measured 250-420 ms at 40k rows).
* above it, HNSW with ``hnsw.ef_search`` set for the query and pgvector's iterative scan
  (``relaxed_order``), so the owner filter does not starve the result. Limitation: an owner with many
  rows that are still a small share of a huge table (say 100k of 10M) pays the filtered walk.

``EXACT_MAX_ROWS`` is defined in :mod:`o.store.passages`, next to the insert that keeps the graph.
Passages (schema 025): the graph holds only the rows of owners over ``EXACT_MAX_ROWS``
(``in_graph``, partial indexes), so the walk adds ``p.in_graph`` and the decision is taken per
owner: an agent's search with archives attached compares the small owners exactly and walks the
graph for the large ones, and keeps the nearest of both. The graph then holds large owners only:
one large owner among small ones walks a graph of its own rows (and those of the other large
owners) instead of the whole table's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from psycopg import sql

from o.store.db import Conn
from o.store.filters import Where
from o.store.passages import vector_column, vector_literal, vector_type

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up


@dataclass(frozen=True)
class QueryVector:
    """The vector half of a search: the query's vector and the width of the agent's model."""

    vector: np.ndarray
    dim: int
    model: str | None


@dataclass(frozen=True)
class VectorGroup:
    """Rows compared with one query vector: those of one model, the agent's own (when it uses that
    model) and those of the archives of that model."""

    query: QueryVector
    agent_id: str | None
    archive_ids: tuple[str, ...] = ()
    folder_ids: tuple[str, ...] = ()


class SearchSpec(Protocol):
    """What the vector half needs of a search (``o.store.search.SearchSpec``, which imports this module)."""

    @property
    def table(self) -> str: ...

    @property
    def exact_max_rows(self) -> int: ...

    @property
    def archive_ids(self) -> list[str]: ...

    @property
    def min_ef_search(self) -> int: ...

    def where(self, agent_id: str | None, archive_ids: Sequence[str], folder_ids: Sequence[str]) -> Where: ...


def ef_search_for(candidates: int, floor: int = 100) -> int:
    # pgvector caps ef_search at 1000; below ~100 recall on hard data drops (PLATFORM.md)
    return max(floor, min(1000, 2 * candidates))


def _nearest(
    conn: Conn, spec: SearchSpec, group: VectorGroup, n: int, *, exact: bool, graph: bool = False
) -> list[dict[str, Any]]:
    """The ``n`` nearest rows of ``group``: every distance computed (``exact``) or an HNSW walk, over
    the graph's rows only when ``graph`` (passages: the partial indexes' predicate)."""
    query = group.query
    scope = spec.where(group.agent_id, group.archive_ids, group.folder_ids)
    column = sql.Identifier(vector_column(query.dim))
    vtype = sql.SQL(vector_type(query.dim))
    literal = vector_literal(query.vector, query.dim)
    fmt = {"column": column, "vtype": vtype, "table": sql.Identifier(spec.table), "scope": scope.clause()}
    # a row without a vector has no distance (and is in no HNSW index)
    where = (
        "WHERE {scope} AND p.{column} IS NOT NULL"
        " AND p.embedding_dim = %s AND p.embedding_model IS NOT DISTINCT FROM %s" + (" AND p.in_graph" if graph else "")
    )
    params = (literal, *scope.params, query.dim, query.model)
    if exact:
        fenced = sql.SQL(
            "SELECT s.id, s.distance FROM (SELECT p.id, p.{column} <=> %s::{vtype} AS distance FROM {table} p "
            + where
            + " OFFSET 0) s ORDER BY s.distance LIMIT %s"
        ).format(**fmt)
        return conn.execute(fenced, (*params, n)).fetchall()
    walk = sql.SQL(
        "SELECT p.id, p.{column} <=> %s::{vtype} AS distance FROM {table} p "
        + where
        + " ORDER BY p.{column} <=> %s::{vtype} LIMIT %s"
    ).format(**fmt)
    # The planner prices a sort over an agent's rows below the HNSW scan long after the scan is
    # faster; with sorts and sequential scans off for this one statement, HNSW gives the order.
    # The three statements go in one round trip.
    with conn.pipeline():
        conn.execute(
            "SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true), "
            "set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            (str(ef_search_for(n, spec.min_ef_search)),),
        )
        cur = conn.execute(walk, (*params, literal, n))
        conn.execute("SELECT set_config('enable_sort', 'on', true), set_config('enable_seqscan', 'on', true)")
        return cur.fetchall()


def _owner_docs(conn: Conn, spec: SearchSpec, group: VectorGroup, docs: int) -> dict[str, int]:
    """The indexed rows of each owner of a passages group (``docs`` when the agent is searched alone)."""
    if group.agent_id is not None and not group.archive_ids and not spec.archive_ids:
        return {group.agent_id: docs}
    rows = conn.execute(
        "SELECT agent_id AS owner, docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival' "
        "UNION ALL SELECT archive_id, docs FROM archive_corpus_stats WHERE archive_id = ANY(%s)",
        (group.agent_id, list(group.archive_ids)),
    ).fetchall()
    return {r["owner"]: int(r["docs"]) for r in rows}


def _split(group: VectorGroup, large: set[str], keep_large: bool) -> VectorGroup | None:
    """The owners of ``group`` that are (``keep_large``) or are not in ``large``; None if there are none."""
    agent = group.agent_id if group.agent_id is not None and (group.agent_id in large) == keep_large else None
    archives = tuple(a for a in group.archive_ids if (a in large) == keep_large)
    return VectorGroup(group.query, agent, archives) if agent is not None or archives else None


def vector_candidates(
    conn: Conn, spec: SearchSpec, group: VectorGroup, n: int, docs: int
) -> tuple[list[str], list[float]]:
    """The ``n`` nearest rows of ``group`` by cosine distance: exact up to ``spec.exact_max_rows``
    indexed rows (``docs``; passages: of each owner), HNSW above."""
    if spec.table != "passages":
        rows = _nearest(conn, spec, group, n, exact=docs <= spec.exact_max_rows)
    else:
        sizes = _owner_docs(conn, spec, group, docs)
        large = {owner for owner, size in sizes.items() if size > spec.exact_max_rows}
        small, big = _split(group, large, False), _split(group, large, True)
        rows = [] if small is None else _nearest(conn, spec, small, n, exact=True)
        rows += [] if big is None else _nearest(conn, spec, big, n, exact=False, graph=True)
    # relaxed_order may return near-ties slightly out of order
    rows.sort(key=lambda r: (r["distance"], r["id"]))
    rows = rows[:n]
    return [r["id"] for r in rows], [float(r["distance"]) for r in rows]


def all_vector_candidates(
    conn: Conn, spec: SearchSpec, groups: Sequence[VectorGroup], n: int, docs: int
) -> tuple[list[str], list[float]]:
    """The nearest rows of every group (``n`` each), nearest first."""
    found: list[tuple[float, str]] = []
    for group in groups:
        ids, distances = vector_candidates(conn, spec, group, n, docs)
        found += zip(distances, ids, strict=True)
    found.sort()
    return [i for _, i in found], [d for d, _ in found]
