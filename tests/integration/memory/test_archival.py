"""Archival memory on the real Postgres: ranking, filters, deletes, isolation, statistics."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import archival
from o.memory.archival import PassageInput
from o.memory.embeddings import local_embedder
from o.store import passages as store
from o.store import search as engine
from o.store.db import Database
from tests.integration.memory.conftest import AgentFactory, create_agent, create_org

FACTS = [
    ("My cat Tom loves tuna and naps in the afternoon sun.", ["pets"]),
    ("The quarterly budget review is on Friday at 10am with the finance team.", ["work"]),
    ("Alice is allergic to peanuts and carries an epinephrine pen.", ["health", "family"]),
    ("We hiked the Zugspitze in July 2023 and camped near the summit.", ["travel"]),
    ("The garage door code was changed to 4711 in March.", ["home"]),
    ("Bob's favourite band is Radiohead; he saw them live in Berlin.", ["family", "music"]),
]


def _fill(db: Database, org: str, agent: str) -> list[archival.Passage]:
    with db.transaction() as conn:
        return [p for text, tags in FACTS for p in archival.insert(conn, org, agent, text, tags=tags)]


def _top(db: Database, org: str, agent: str, query: str, **kw: object) -> list[str]:
    with db.transaction() as conn:
        return [r["content"] for r in archival.search(conn, org, agent, query, **kw)]  # type: ignore[arg-type]


def test_ranking_finds_by_words_and_by_meaning(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    _fill(db, org, agent)
    # shared rare words
    assert _top(db, org, agent, "garage door code")[0].startswith("The garage door")
    # no word in common: only the vector half can find it
    assert _top(db, org, agent, "which relative has a food allergy?")[0].startswith("Alice")
    assert _top(db, org, agent, "feline pet diet")[0].startswith("My cat Tom")
    assert _top(db, org, agent, "mountain climbing trip")[0].startswith("We hiked")
    with db.transaction() as conn:
        hits = archival.search_hits(conn, org, agent, "Radiohead concert", top_k=3)
    assert hits[0].passage.text.startswith("Bob's") and hits[0].lexical_rank == 1 and hits[0].vector_rank == 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(_top(db, org, agent, "anything at all", top_k=4)) == 4


def test_tag_and_time_filters_apply_inside_the_search(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    _fill(db, org, agent)
    family = _top(db, org, agent, "peanuts Radiohead", tags=["family"], top_k=10)
    assert sorted(t[:5] for t in family) == ["Alice", "Bob's"]
    both = _top(db, org, agent, "Radiohead", tags=["family", "music"], tag_match_mode="all", top_k=10)
    assert [t[:5] for t in both] == ["Bob's"]
    anyone = _top(db, org, agent, "Radiohead", tags=["work", "music"], tag_match_mode="any", top_k=10)
    assert {t[:5] for t in anyone} == {"Bob's", "The q"}
    with db.transaction() as conn:
        archival.insert(
            conn, org, agent, "Old note: the dentist appointment moved.", created_at=datetime(2020, 1, 5, tzinfo=UTC)
        )
    old = _top(db, org, agent, "dentist", end_datetime="2020-01-05", top_k=10)
    assert old == ["Old note: the dentist appointment moved."]
    recent = _top(db, org, agent, "dentist appointment", start_datetime=datetime(2021, 1, 1, tzinfo=UTC), top_k=10)
    assert "Old note: the dentist appointment moved." not in recent and len(recent) == len(FACTS)
    with pytest.raises(InvalidInput, match="tag_match_mode"):
        _top(db, org, agent, "x", tags=["a"], tag_match_mode="some")
    with pytest.raises(InvalidInput, match="start of the time range is after its end"):
        _top(db, org, agent, "x", start_datetime="2024-02-01", end_datetime="2024-01-01")


def test_delete_removes_passage_and_its_statistics(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    stored = _fill(db, org, agent)
    garage = next(p for p in stored if "garage" in p.text)

    def stats() -> tuple[int, int]:
        with db.transaction() as conn:
            docs = conn.execute(
                "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
            ).fetchone()["docs"]
            df = conn.execute(
                "SELECT coalesce(sum(df), 0) AS n FROM search_term_stats "
                "WHERE agent_id = %s AND corpus = 'archival' AND lexeme = '4711'",
                (agent,),
            ).fetchone()["n"]
        return int(docs), int(df)

    assert stats() == (len(FACTS), 1)
    with db.transaction() as conn:
        archival.delete(conn, org, agent, garage.id)
    assert stats() == (len(FACTS) - 1, 0)
    assert all("garage" not in t for t in _top(db, org, agent, "garage door code 4711", top_k=10))
    with db.transaction() as conn:
        assert garage.id not in [p.id for p in archival.list_passages(conn, org, agent)]
        with pytest.raises(NotFound, match="not found"):
            archival.delete(conn, org, agent, garage.id)


def test_statistics_match_a_recount_after_mixed_writes(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    stored = _fill(db, org, agent)
    with db.transaction() as conn:
        archival.insert(conn, org, agent, [PassageInput("Tom the cat hates rain."), PassageInput("Rain in July.")])
        archival.delete(conn, org, agent, stored[0].id)
        expected = conn.execute(
            """SELECT u.lexeme, count(*) AS df FROM passages p, unnest(p.search_tsv) u
               WHERE p.agent_id = %s GROUP BY 1 ORDER BY 1""",
            (agent,),
        ).fetchall()
        kept = conn.execute(
            "SELECT lexeme, df FROM search_term_stats WHERE agent_id = %s AND corpus = 'archival' ORDER BY 1",
            (agent,),
        ).fetchall()
        total = conn.execute(
            "SELECT count(*) AS n, sum(search_len) AS len FROM passages WHERE agent_id = %s", (agent,)
        ).fetchone()
        corpus = conn.execute(
            "SELECT docs, total_len FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
        ).fetchone()
    assert [(r["lexeme"], r["df"]) for r in kept] == [(r["lexeme"], r["df"]) for r in expected]
    assert corpus["docs"] == total["n"] and corpus["total_len"] == pytest.approx(total["len"])


def test_agents_and_organizations_are_isolated(db: Database, org: str, make_agent: AgentFactory) -> None:
    mine, neighbour = make_agent(), make_agent()
    _fill(db, org, mine)
    with db.transaction() as conn:
        archival.insert(conn, org, neighbour, "The neighbour's garage door code is 1234.")
    assert _top(db, org, neighbour, "garage door code", top_k=10) == ["The neighbour's garage door code is 1234."]
    assert all("neighbour" not in t for t in _top(db, org, mine, "neighbour garage", top_k=10))

    other_org = create_org(db)
    stranger = create_agent(db, other_org)
    with db.transaction() as conn:
        with pytest.raises(NotFound):
            archival.search(conn, other_org, mine, "garage")
        with pytest.raises(NotFound):
            archival.insert(conn, other_org, mine, "planted memory")
        with pytest.raises(NotFound):
            archival.list_passages(conn, other_org, mine)
        first = archival.list_passages(conn, org, mine)[0]
        with pytest.raises(NotFound):
            archival.delete(conn, other_org, mine, first.id)
        # an id from another agent is not found through this one
        with pytest.raises(NotFound):
            archival.delete(conn, org, neighbour, first.id)
        assert archival.list_passages(conn, other_org, stranger) == []
    assert len(_top(db, org, mine, "garage", top_k=100)) == len(FACTS)


def test_list_pages_and_filters(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    stored = _fill(db, org, agent)
    with db.transaction() as conn:
        first = archival.list_passages(conn, org, agent, limit=4)
        rest = archival.list_passages(conn, org, agent, after=first[-1].id, limit=4)
        newest = archival.list_passages(conn, org, agent, limit=2, ascending=False)
        cats = archival.list_passages(conn, org, agent, text_contains="CAT")
        family = archival.list_passages(conn, org, agent, tags=["family"])
    assert [p.id for p in first + rest] == [p.id for p in stored]
    assert [p.id for p in newest] == [stored[-1].id, stored[-2].id]
    assert [p.text[:6] for p in cats] == ["My cat"]
    assert len(family) == 2


def test_text_contains_is_a_literal_substring(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    with db.transaction() as conn:
        for text in ["50% off_today", "500 off today", r"path C:\temp\new", "other"]:
            archival.insert(conn, org, agent, text)
        contains = lambda s: [p.text for p in archival.list_passages(conn, org, agent, text_contains=s)]  # noqa: E731
        assert contains("0% OFF_") == ["50% off_today"]
        assert contains("0_") == []
        assert contains("\\temp") == [r"path C:\temp\new"]
        assert contains("") == ["50% off_today", "500 off today", r"path C:\temp\new", "other"]


def test_long_text_is_chunked_and_chunks_share_context(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent(
        {
            "embedding_endpoint_type": "local",
            "embedding_model": "all-MiniLM-L6-v2",
            "embedding_dim": 384,
            "embedding_chunk_size": 20,
        }
    )
    text = (
        ("Project Falcon started in 2019. " * 3)
        + "The team lead of the project is Maria Gonzales. "
        + ("Weekly syncs happen on Tuesdays. " * 4)
    )
    with db.transaction() as conn:
        chunks = archival.insert(conn, org, agent, text, tags=["falcon"])
    assert len(chunks) > 1 and all(c.tags == ["falcon"] for c in chunks)
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(len(chunks)))
    # a chunk that never names the project still matches it, through its neighbours' words, below
    # the chunk that names it; inserted without context it does not match at all
    maria = next(c for c in chunks if "Maria" in c.text)
    assert "Falcon" not in maria.text
    with db.transaction() as conn:
        hits = {h.passage.id: h for h in archival.search_hits(conn, org, agent, "Falcon", top_k=10)}
    assert hits[chunks[0].id].lexical_rank == 1 and hits[maria.id].lexical_rank > 1
    alone = make_agent(
        {
            "embedding_endpoint_type": "local",
            "embedding_model": "all-MiniLM-L6-v2",
            "embedding_dim": 384,
            "embedding_chunk_size": 20,
        }
    )
    with db.transaction() as conn:
        stored = archival.insert(conn, org, alone, text, context_window=0)
        hits = {h.passage.id: h for h in archival.search_hits(conn, org, alone, "Falcon", top_k=10)}
    maria_alone = next(c for c in stored if "Maria" in c.text)
    assert hits[maria_alone.id].lexical_rank is None


def test_bad_inputs_are_clear_errors(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    with db.transaction() as conn:
        with pytest.raises(InvalidInput, match="non-empty"):
            archival.insert(conn, org, agent, "   ")
        with pytest.raises(InvalidInput, match="top_k"):
            archival.search(conn, org, agent, "x", top_k=0)
        with pytest.raises(InvalidInput, match="query must not be empty"):
            archival.search(conn, org, agent, " ")
        with pytest.raises(InvalidInput, match="query embedding has 3 dimensions but the agent's embedding_dim is 384"):
            archival.search_hits(conn, org, agent, "x", query_vector=np.ones(3))
        assert archival.search(conn, org, agent, "nothing stored yet") == []


def test_a_query_vector_can_be_given(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    _fill(db, org, agent)
    vector = local_embedder().embed(["domestic animal that purrs"])[0]
    with db.transaction() as conn:
        hits = archival.search_hits(conn, org, agent, "zzzz", query_vector=vector, top_k=1)
    assert hits[0].passage.text.startswith("My cat") and hits[0].lexical_rank is None


def test_concurrent_writers_keep_statistics_exact(db: Database, org: str, make_agent: AgentFactory) -> None:
    agent = make_agent()
    seed = _fill(db, org, agent)

    def write(n: int) -> None:
        with db.transaction() as conn:
            archival.insert(
                conn, org, agent, [PassageInput(f"writer {n} note {i} about tuna and budgets") for i in range(5)]
            )

    def remove(passage_id: str) -> None:
        with db.transaction() as conn:
            archival.delete(conn, org, agent, passage_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(write, n) for n in range(4)] + [pool.submit(remove, p.id) for p in seed[:3]]
        for future in futures:
            future.result()
    with db.transaction() as conn:
        expected = conn.execute(
            """SELECT u.lexeme, count(*) AS df FROM passages p, unnest(p.search_tsv) u
               WHERE p.agent_id = %s GROUP BY 1 ORDER BY 1""",
            (agent,),
        ).fetchall()
        kept = conn.execute(
            "SELECT lexeme, df FROM search_term_stats WHERE agent_id = %s AND corpus = 'archival' ORDER BY 1",
            (agent,),
        ).fetchall()
        docs = conn.execute(
            "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
        ).fetchone()["docs"]
        assert archival.count(conn, org, agent) == len(FACTS) - 3 + 20 == docs
    assert [(r["lexeme"], r["df"]) for r in kept] == [(r["lexeme"], r["df"]) for r in expected]


def test_hnsw_path_agrees_with_exact_search_and_restores_settings(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    agent = make_agent()
    with db.transaction() as conn:
        # every row in the graph (schema 025 keeps small owners out of it), so that the walk has them
        conn.execute("SELECT set_config('o.graph_min_rows', '0', true)")
        for text, tags in FACTS:
            archival.insert(conn, org, agent, text, tags=tags)
        assert conn.execute("SELECT bool_and(in_graph) AS b FROM passages WHERE agent_id = %s", (agent,)).fetchone()[
            "b"
        ]
    vector = local_embedder().embed(["which relative has a food allergy?"])[0]

    def run(exact_max_rows: int) -> list[str]:
        spec = engine.SearchSpec(
            table="passages",
            corpus="archival",
            organization_id=org,
            agent_id=agent,
            columns=store.PASSAGE_COLUMNS,
            model="all-MiniLM-L6-v2",
            dim=384,
            query_vector=vector,
            exact_max_rows=exact_max_rows,
        )
        with db.transaction() as conn:
            rows = engine.hybrid_search(conn, spec, "which relative has a food allergy?", top_k=3)
            settings = conn.execute(
                "SELECT current_setting('enable_sort') AS sort, current_setting('enable_seqscan') AS seq"
            ).fetchone()
        assert settings == {"sort": "on", "seq": "on"}
        return [r["id"] for r in rows]

    assert run(0) == run(10_000)


def test_vectors_go_binary_and_exact_even_on_a_connection_that_never_registered_the_type(
    db: Database, org: str, make_agent: AgentFactory
) -> None:
    """insert_many sends vectors as binary ``vector[]``: a connection opened before the migrations made
    the type (``o migrate``'s pool) learns it on first use, and the stored numbers are the float32 given
    (the text form it replaced kept 7 significant digits)."""
    agent = make_agent()
    vector = np.random.default_rng(3).standard_normal(384).astype(np.float32)
    with psycopg.connect(db.url, row_factory=dict_row) as conn:
        assert conn.adapters.types.get("vector") is None
        rows = [store.NewPassage("binary vectors", vector)]
        [row] = store.insert_many(conn, org, agent, rows, model="m", dim=384, new_id=lambda: new_id("passage"))
        stored = conn.execute("SELECT embedding_384::text AS v FROM passages WHERE id = %s", (row["id"],)).fetchone()
    assert np.array_equal(np.array(json.loads(stored["v"]), dtype=np.float32), vector)
    with pytest.raises(InvalidInput, match="NaN"), db.transaction() as conn:
        bad = [store.NewPassage("x", vector * np.nan)]
        store.insert_many(conn, org, agent, bad, model="m", dim=384, new_id=lambda: new_id("passage"))
