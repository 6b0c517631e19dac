"""An agent's archival search over its attached archives, on the memory engine: archives of another
embedding model are compared with the query embedded by that model, in the same ranking as the agent's own
passages; a batch is indexed with its neighbours' context; BM25 statistics per archive stay exact."""

from __future__ import annotations

from o.memory import archival, archives
from o.store.db import Database
from tests.integration.memory.conftest import AgentFactory, make_agent, org  # noqa: F401
from tests.integration.memory.test_embedding_providers import EMBEDDERS, openai_config
from tests.servers.openai_server import OpenAIServer

KITE = "the red kite nests in the old oak"
FACTS = ["invoices are due on the first monday", "oak furniture polish"]


def _inputs(texts: list[str]) -> list[archival.PassageInput]:
    return [archival.PassageInput(t) for t in texts]


def test_an_archive_of_another_model_is_searched_with_its_model(
    db: Database,
    org: str,  # noqa: F811
    make_agent: AgentFactory,  # noqa: F811
    openai_server: OpenAIServer,
) -> None:
    agent = make_agent()  # the local 384-dimensional model
    with db.transaction() as conn:
        archival.insert(conn, org, agent, [archival.PassageInput(KITE, tags=["own"])], embedders=EMBEDDERS)
        config = openai_config(openai_server, "text-embedding-3-small", 1536)
        wide = archives.create(conn, org, "wide", embedding_config=config, embedders=EMBEDDERS)
        local = archives.create(conn, org, "local")
        for archive in (wide, local):
            archives.insert_passages(conn, org, archive.id, _inputs([KITE, *FACTS]), embedders=EMBEDDERS)
            archives.attach(conn, org, agent, archive.id)
    asked = len(openai_server.embedding_requests)
    with db.read() as conn:
        hits = archival.search_hits(conn, org, agent, KITE, top_k=9, embedders=EMBEDDERS, weights=(0.0, 1.0))
    # the query went once to the wide archive's model (the local archive shares the agent's vector)
    assert [r["input"] for r in openai_server.embedding_requests[asked:]] == [[KITE]]
    assert len(hits) == 7  # every row: one own, three in each archive
    nearest = {(h.passage.agent_id, h.passage.archive_id) for h in hits[:3]}
    assert nearest == {(agent, None), (None, wide.id), (None, local.id)}
    # each compared with the query of its own model: the same text is (nearly) the same vector
    assert all(h.passage.text == KITE and h.vector_distance is not None for h in hits[:3])
    assert all(h.vector_distance is not None and h.vector_distance < 0.12 for h in hits[:3])
    assert all(h.passage.text != KITE for h in hits[3:])
    # detached, the archive is out of the search
    with db.transaction() as conn:
        archives.detach(conn, org, agent, wide.id)
        left = archival.search_hits(conn, org, agent, KITE, top_k=9, embedders=EMBEDDERS)
    assert {h.passage.archive_id for h in left} == {None, local.id}


def test_a_batch_is_indexed_with_its_neighbours(db: Database, org: str, make_agent: AgentFactory) -> None:  # noqa: F811
    session = [
        "Oskar keeps the lighthouse on the northern island.",
        "He polishes the lamp every night before the ferry passes.",
        "On Sundays he writes letters to his sister.",
    ]
    agent = make_agent()
    with db.transaction() as conn:
        batch = archives.create(conn, org, "batch")
        archives.insert_passages(conn, org, batch.id, _inputs(session))
        one_by_one = archives.create(conn, org, "one by one")
        for text in session:
            archives.insert_passages(conn, org, one_by_one.id, _inputs([text]))
        for archive in (batch, one_by_one):
            archives.attach(conn, org, agent, archive.id)
        # words alone: "lighthouse" is only in the first passage's own text
        hits = archival.search_hits(conn, org, agent, "lighthouse", top_k=10, weights=(1.0, 0.0))
    found = {(h.passage.archive_id, h.passage.text) for h in hits}
    assert (batch.id, session[1]) in found  # found through its neighbour, at a lower score
    assert (one_by_one.id, session[1]) not in found
    best = {h.passage.archive_id: h.score for h in hits if h.passage.text == session[0]}
    assert best.keys() == {batch.id, one_by_one.id}
    by_text = {(h.passage.archive_id, h.passage.text): h.score for h in hits}
    assert by_text[(batch.id, session[1])] < by_text[(batch.id, session[0])]


def _stats(db: Database, archive_id: str) -> tuple[int, int]:
    with db.read() as conn:
        row = conn.execute(
            "SELECT coalesce((SELECT docs FROM archive_corpus_stats WHERE archive_id = %s), 0) AS docs,"
            " (SELECT count(*) FROM archive_term_stats WHERE archive_id = %s) AS terms",
            (archive_id, archive_id),
        ).fetchone()
    assert row is not None
    return int(row["docs"]), int(row["terms"])


def test_statistics_follow_inserts_and_deletes(db: Database, org: str, make_agent: AgentFactory) -> None:  # noqa: F811
    agent = make_agent()
    with db.transaction() as conn:
        archive = archives.create(conn, org, "stats")
        stored = archives.insert_passages(conn, org, archive.id, _inputs([KITE, *FACTS]))
        archival.insert(conn, org, agent, "an agent's own passage")
    docs, terms = _stats(db, archive.id)
    assert docs == 3 and terms > 0
    with db.read() as conn:
        own = conn.execute(
            "SELECT docs FROM search_corpus_stats WHERE agent_id = %s AND corpus = 'archival'", (agent,)
        ).fetchone()
    assert own is not None and own["docs"] == 1  # the archive's rows are not counted for any agent
    with db.transaction() as conn:
        for passage in stored:
            archives.delete_passage(conn, org, archive.id, passage.id)
    assert _stats(db, archive.id) == (0, 0)
    with db.transaction() as conn:
        archives.insert_passages(conn, org, archive.id, _inputs(FACTS))
        archives.delete(conn, org, archive.id)
    assert _stats(db, archive.id) == (0, 0)
