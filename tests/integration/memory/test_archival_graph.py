"""Which passages the HNSW graph holds (schema 025): only those of owners over the exact-search
threshold, on every insert path, and the search of a large owner walks that graph."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from o.ids import new_id
from o.memory import archives
from o.store import passages as store
from o.store import search as engine
from o.store.archives import ArchiveScope
from o.store.db import Conn, Database
from o.store.migrate import migrate
from tests.conftest import new_database
from tests.integration.memory.conftest import AgentFactory

# a threshold small enough for a test; the session's o.graph_min_rows and the search's exact_max_rows agree
THRESHOLD = 40
MODEL = "all-MiniLM-L6-v2"


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)


def _insert(conn: Conn, org: str, agent: str | None, vectors: np.ndarray, archive: str | None = None) -> list[str]:
    rows = [store.NewPassage(f"passage number {i} about things", v) for i, v in enumerate(vectors)]
    stored = store.insert_many(
        conn, org, agent, rows, model=MODEL, dim=384, new_id=lambda: new_id("passage"), archive_id=archive
    )
    return [r["id"] for r in stored]


def _in_graph(conn: Conn, ids: list[str]) -> list[bool]:
    rows = conn.execute("SELECT id, in_graph FROM passages WHERE id = ANY(%s)", (ids,)).fetchall()
    flags = {r["id"]: r["in_graph"] for r in rows}
    return [flags[i] for i in ids]


def _spec(
    org: str, agent: str, vector: np.ndarray, exact_max_rows: int, archive_id: str | None = None
) -> engine.SearchSpec:
    """A vector-only search of the agent's passages (and the attached archive's, if given)."""
    return engine.SearchSpec(
        table="passages",
        corpus="archival",
        organization_id=org,
        agent_id=agent,
        columns=store.PASSAGE_COLUMNS,
        model=MODEL,
        dim=384,
        query_vector=vector,
        lexical_weight=0.0,
        exact_max_rows=exact_max_rows,
        archives=(ArchiveScope(archive_id, MODEL, 384, vector),) if archive_id else (),
    )


def _nearest(conn: Conn, org: str, agent: str, vector: np.ndarray, exact_max_rows: int) -> list[str]:
    spec = _spec(org, agent, vector, exact_max_rows)
    return [r["id"] for r in engine.hybrid_search(conn, spec, "unrelated", top_k=10)]


def test_the_threshold_in_sql_is_exact_max_rows_and_every_width_is_partial(db: Database) -> None:
    with db.transaction() as conn:
        assert conn.execute("SELECT o_graph_min_rows() AS t").fetchone()["t"] == store.EXACT_MAX_ROWS
        defs = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'passages' AND indexdef LIKE '%%hnsw%%'"
        ).fetchall()
    assert sorted(d["indexname"] for d in defs) == sorted(f"passages_emb_{w}" for w in store.SUPPORTED_WIDTHS)
    assert all(d["indexdef"].endswith("WHERE in_graph") for d in defs)


def test_a_small_owners_rows_are_not_in_the_graph(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    vectors = _vectors(30, 1)
    with db.transaction() as conn:
        ids = _insert(conn, org, agent, vectors)
        assert _in_graph(conn, ids) == [False] * 30
        # a walk of the whole graph towards one of them (sorts off: the index gives the order) never
        # reaches any: they are not in it
        conn.execute("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true)")
        walk = "SELECT id FROM passages WHERE in_graph ORDER BY embedding_384 <=> %s LIMIT 40"
        literal = store.vector_literal(vectors[0], 384)
        plan = conn.execute("EXPLAIN " + walk, (literal,)).fetchall()
        assert "Index Scan using passages_emb_384" in " ".join(r["QUERY PLAN"] for r in plan)
        assert not {r["id"] for r in conn.execute(walk, (literal,)).fetchall()} & set(ids)


def test_an_owner_crossing_the_threshold_joins_the_graph_and_is_found_through_it(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    vectors = _vectors(80, 3)
    with db.transaction() as conn:
        conn.execute("SELECT set_config('o.graph_min_rows', %s, true)", (str(THRESHOLD),))
        first = _insert(conn, org, agent, vectors[:30])
        assert _in_graph(conn, first) == [False] * 30
        # this call takes the owner from 30 to 50 rows: its rows and the 30 before join the graph
        crossing = _insert(conn, org, agent, vectors[30:50])
        assert _in_graph(conn, first + crossing) == [True] * 50
        later = _insert(conn, org, agent, vectors[50:60])
        assert _in_graph(conn, later) == [True] * 10
        docs = conn.execute(
            "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
        ).fetchone()["docs"]
        assert docs == 60  # joining the graph counted no row twice
        queries = _vectors(10, 4)
        found = 0
        for q in queries:
            walked = _nearest(conn, org, agent, q, THRESHOLD)
            exact = _nearest(conn, org, agent, q, 10_000)
            found += len(set(walked) & set(exact))
        assert found / (10 * len(queries)) >= 0.9
        # the walk reads the graph: a row taken out of it is found exactly but no longer walked to
        nearest = _nearest(conn, org, agent, vectors[5], 10_000)[0]
        assert nearest == first[5]
        conn.execute("UPDATE passages SET in_graph = false WHERE id = %s", (first[5],))
        assert first[5] not in _nearest(conn, org, agent, vectors[5], THRESHOLD)
        assert _nearest(conn, org, agent, vectors[5], 10_000)[0] == first[5]


def test_rows_of_a_large_owner_join_the_graph_on_any_insert_path(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    """A plain INSERT (as a bundle's COPY: no in_graph given) into an owner over the threshold is added by
    the trigger; an owner that shrinks keeps its rows in the graph and is searched exactly again."""
    agent = make_agent()
    vectors = _vectors(50, 5)
    with db.transaction() as conn:
        conn.execute("SELECT set_config('o.graph_min_rows', %s, true)", (str(THRESHOLD),))
        ids = _insert(conn, org, agent, vectors[:45])
        plain = new_id("passage")
        conn.execute(
            sql.SQL(
                "INSERT INTO passages (id, organization_id, agent_id, text, search_tsv, search_len, embedding_model, "
                "embedding_dim, embedding_384) VALUES (%s, %s, %s, 'copied', to_tsvector('copied'), 1, %s, 384, %s)"
            ),
            (plain, org, agent, MODEL, store.vector_literal(vectors[45], 384)),
        )
        assert _in_graph(conn, [*ids, plain]) == [True] * 46
        conn.execute("DELETE FROM passages WHERE id = ANY(%s)", (ids[:20],))
        assert _in_graph(conn, ids[20:]) == [True] * 25
        small = _insert(conn, org, agent, vectors[46:48])
        assert _in_graph(conn, small) == [False, False]
        # 28 rows now: searched exactly, the rows outside the graph included
        assert _nearest(conn, org, agent, vectors[46], THRESHOLD)[0] == small[0]


def test_an_archive_crossing_the_threshold_is_walked_beside_a_small_agent(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    """An agent's search over its own rows (small: exact) and an attached archive's (large: the graph)."""
    agent = make_agent()
    vectors = _vectors(60, 6)
    with db.transaction() as conn:
        conn.execute("SELECT set_config('o.graph_min_rows', %s, true)", (str(THRESHOLD),))
        archive = archives.create(conn, org, "big", embedding_config={"embedding_model": MODEL, "embedding_dim": 384})
        archive_id = archive.id
        archives.attach(conn, org, agent, archive_id)
        kept = _insert(conn, org, None, vectors[:30], archive=archive_id)
        assert _in_graph(conn, kept) == [False] * 30
        kept += _insert(conn, org, None, vectors[30:50], archive=archive_id)  # crosses: all 50 join
        own = _insert(conn, org, agent, vectors[50:55])
        assert _in_graph(conn, kept) == [True] * 50 and _in_graph(conn, own) == [False] * 5
    with db.transaction() as conn:
        conn.execute("SELECT set_config('o.graph_min_rows', %s, true)", (str(THRESHOLD),))
        spec = _spec(org, agent, vectors[52], THRESHOLD, archive_id)
        assert [r["id"] for r in engine.hybrid_search(conn, spec, "unrelated", top_k=1)] == [own[2]]
        spec = _spec(org, agent, vectors[7], THRESHOLD, archive_id)
        assert [r["id"] for r in engine.hybrid_search(conn, spec, "unrelated", top_k=1)] == [kept[7]]


def test_two_transactions_that_cross_the_threshold_together_put_every_row_in_the_graph(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    """Each inserts fewer rows than the threshold; the second one's statistics wait for the first one's
    commit, then see both: the owner's rows all join the graph, none counted twice."""
    agent = make_agent()
    vectors = _vectors(50, 7)
    with (
        psycopg.connect(db.url, row_factory=dict_row) as first,
        psycopg.connect(db.url, row_factory=dict_row) as second,
    ):
        for conn in (first, second):
            conn.execute("SELECT set_config('o.graph_min_rows', %s, false)", (str(THRESHOLD),))
        _insert(first, org, agent, vectors[:25])

        def insert_second() -> None:
            _insert(second, org, agent, vectors[25:])
            second.commit()

        with ThreadPoolExecutor(1) as pool:
            later = pool.submit(insert_second)
            time.sleep(0.5)
            assert not later.done()  # waiting on the owner's statistics row
            first.commit()
            later.result(timeout=30)
    with db.transaction() as conn:
        flags = conn.execute("SELECT in_graph FROM passages WHERE agent_id = %s", (agent,)).fetchall()
        docs = conn.execute(
            "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
        ).fetchone()["docs"]
    assert [f["in_graph"] for f in flags] == [True] * 50 and docs == 50


def test_the_upgrade_puts_the_rows_of_existing_large_owners_in_the_graph(pg_url: str, tmp_path: Path) -> None:
    """Schema 025 on a database with data: an owner already over the threshold (its statistics say so)
    joins the graph, a small one stays out of it."""
    schema = Path(store.__file__).resolve().parents[2] / "schema"
    for path in sorted(schema.glob("*.sql")):
        if int(path.name[:3]) < 25:
            shutil.copy(path, tmp_path / path.name)
    with new_database(pg_url, "graph") as url:
        migrate(url, tmp_path)
        vector = store.vector_literal(_vectors(1, 8)[0], 384)
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO organizations (id, name) VALUES ('o1', 'o1')")
            for agent in ("large", "small"):
                conn.execute("INSERT INTO agents (id, organization_id, name) VALUES (%s, 'o1', 'a')", (agent,))
                conn.execute(
                    "INSERT INTO passages (id, organization_id, agent_id, text, search_tsv, search_len, "
                    "embedding_model, embedding_dim, embedding_384) "
                    "VALUES (%s, 'o1', %s, 'words', to_tsvector('words'), 1, 'm', 384, %s)",
                    (f"p-{agent}", agent, vector),
                )
            # as if it held more rows than the threshold
            conn.execute(
                "UPDATE search_corpus_stats SET docs = %s WHERE agent_id = 'large'", (store.EXACT_MAX_ROWS + 1,)
            )
        for path in sorted(schema.glob("025_*.sql")):
            shutil.copy(path, tmp_path / path.name)
        assert [name[:3] for name in migrate(url, tmp_path)] == ["025"]
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT agent_id, in_graph FROM passages ORDER BY agent_id").fetchall()
            assert rows == [("large", True), ("small", False)]
            docs = conn.execute("SELECT agent_id, docs FROM search_corpus_stats ORDER BY agent_id").fetchall()
            assert docs == [("large", store.EXACT_MAX_ROWS + 1), ("small", 1)]
