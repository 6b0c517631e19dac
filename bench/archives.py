"""Archival search over archives attached to agents: latency, and LoCoMo recall through an archive.

Latency: one archive of 10k synthetic passages (``--passages``; the Zipf-word, clustered-vector corpus of
``bench/archival_latency.py``) is attached to 20 agents (``--agents``), each with 200 passages of its own;
every agent's search (``archival.search_hits``: BM25 statistics summed over the agent and its archives,
the vector half, the fusion) is timed with the query's vector given. The archive is stored once whatever
the number of agents. Then a second archive of another model (1536-d, its query vectors from a seeded
stand-in for that model's embedder, nothing leaves the machine) is attached to the same agents, and the
search is timed again: what a second vector group costs.

LoCoMo (``--locomo``, needs ``../shared/data/locomo/locomo10.json`` or ``--data``): each conversation is an
archive attached to an empty agent; every session is written with one batch call
(``archives.passages.create_many``: each turn indexed with its neighbours) or one call per turn (what a
client that loops over ``passages.create`` does: each turn alone), and the questions are asked through the
agent's archival search. R@10 of both is printed.

    python bench/archives.py                  # latency at 10k passages in one archive, 20 agents
    python bench/archives.py --baseline       # also one agent holding as many passages itself
    python bench/archives.py --locomo         # also LoCoMo R@10, batch vs one passage per call
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.archival_latency import Corpus, pct  # noqa: E402
from o.ids import new_id  # noqa: E402
from o.memory import archival, archives  # noqa: E402
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbeddingConfig, normalize  # noqa: E402
from o.store import archives as archive_store  # noqa: E402
from o.store import passages as store  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402

WIDE = {"embedding_endpoint_type": "openai", "embedding_model": "text-embedding-3-small", "embedding_dim": 1536}


class SeededEmbedder:
    """A stand-in for another model's embedder: seeded unit vectors of its size (the bench measures the
    search's SQL, not a provider's latency)."""

    def __init__(self, model: str, dim: int) -> None:
        self.model, self.dim = model, dim
        self.rng = np.random.default_rng(dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        return normalize(self.rng.normal(size=(len(texts), self.dim)).astype(np.float32))


class BenchEmbedders:
    """The local model for the local model; the seeded stand-in for any other."""

    def for_config(self, config: EmbeddingConfig) -> Any:
        if config.embedding_dim == 384:
            return LOCAL_EMBEDDERS.for_config(config)
        return SeededEmbedder(config.embedding_model, config.embedding_dim)

    def check(self, config: EmbeddingConfig) -> None:
        del config


def fill_archive(db: Database, org: str, archive_id: str, corpus: Corpus, count: int, *, dim: int, model: str) -> float:
    """``count`` synthetic passages written to the archive through the store; returns passages per second."""
    started = time.perf_counter()
    for done in range(0, count, 500):
        n = min(500, count - done)
        vectors = corpus.vectors(n) if dim == 384 else corpus.wide_vectors(n, dim)
        rows = [store.NewPassage(text=corpus.sentence(), embedding=vectors[i]) for i in range(n)]
        with db.transaction() as conn:
            store.insert_many(
                conn, org, None, rows, model=model, dim=dim, new_id=lambda: new_id("passage"), archive_id=archive_id
            )
    return count / (time.perf_counter() - started)


def timed_searches(
    db: Database, org: str, agents: list[str], corpus: Corpus, queries: int, *, archived: bool = True
) -> list[float]:
    timings = []
    for i in range(queries):
        agent = agents[i % len(agents)]
        text, vector = corpus.sentence(3, 9), corpus.vectors(1)[0]
        started = time.perf_counter()
        with db.transaction() as conn:
            hits = archival.search_hits(
                conn, org, agent, text, top_k=10, query_vector=vector, embedders=BenchEmbedders()
            )
        timings.append(time.perf_counter() - started)
        assert not archived or any(h.passage.archive_id for h in hits), "the attached archive was not searched"
    return timings


def latency(db: Database, org: str, args: argparse.Namespace) -> None:
    corpus = Corpus()
    agents = []
    with db.transaction() as conn:
        archive = archives.create(conn, org, "shared")
        for _ in range(args.agents):
            agent = new_id("agent")
            conn.execute(
                "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                (agent, org, "bench", json.dumps(EmbeddingConfig.default().model_dump())),
            )
            archives.attach(conn, org, agent, archive.id)
            agents.append(agent)
    rate = fill_archive(db, org, archive.id, corpus, args.passages, dim=384, model="all-MiniLM-L6-v2")
    for agent in agents:
        rows = [store.NewPassage(text=corpus.sentence(), embedding=v) for v in corpus.vectors(200)]
        with db.transaction() as conn:
            store.insert_many(conn, org, agent, rows, model="all-MiniLM-L6-v2", dim=384, new_id=lambda: new_id("p"))
    with db.transaction() as conn:
        conn.execute("ANALYZE passages")
        stored = conn.execute("SELECT count(*) AS n FROM passages WHERE archive_id = %s", (archive.id,)).fetchone()
    print(f"archive: {args.passages:,} passages written at {rate:,.0f}/s; attached to {len(agents)} agents")
    print(f"stored once: {stored['n']:,} archive rows for {len(agents)} agents")
    timed_searches(db, org, agents, corpus, 20)  # warm up
    report(f"agent search, own 200 + archive {args.passages:,}", timed_searches(db, org, agents, corpus, args.queries))
    if args.baseline:
        # the same number of passages as one agent's own memory (no archive): what the archive adds
        alone = new_id("agent")
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                (alone, org, "bench", json.dumps(EmbeddingConfig.default().model_dump())),
            )
        for done in range(0, args.passages + 200, 500):
            vectors = corpus.vectors(min(500, args.passages + 200 - done))
            rows = [store.NewPassage(text=corpus.sentence(), embedding=v) for v in vectors]
            with db.transaction() as conn:
                store.insert_many(conn, org, alone, rows, model="all-MiniLM-L6-v2", dim=384, new_id=lambda: new_id("p"))
        with db.transaction() as conn:
            conn.execute("ANALYZE passages")
        timed_searches(db, org, [alone], corpus, 20, archived=False)
        report(
            f"baseline: one agent's own {args.passages + 200:,} passages, no archive",
            timed_searches(db, org, [alone], corpus, args.queries, archived=False),
        )

    with db.transaction() as conn:
        wide = archives.create(conn, org, "wide", embedding_config=WIDE, embedders=BenchEmbedders())
        for agent in agents:
            archive_store.attach(conn, agent, wide.id)
    fill_archive(db, org, wide.id, corpus, args.passages // 10, dim=1536, model=WIDE["embedding_model"])
    with db.transaction() as conn:
        conn.execute("ANALYZE passages")
    timed_searches(db, org, agents, corpus, 20)
    report(
        f"  + a 1536-d archive of {args.passages // 10:,} (query embedded by its stand-in model)",
        timed_searches(db, org, agents, corpus, args.queries),
    )


def report(label: str, timings: list[float]) -> None:
    print(
        f"{label}: top 10  p50 {pct(timings, 0.5):.1f} ms  p95 {pct(timings, 0.95):.1f} ms  "
        f"mean {1000 * statistics.fmean(timings):.1f} ms  ({len(timings)} searches)"
    )


def locomo(db: Database, org: str, data: Path) -> None:
    """R@10 through an archive attached to an agent: one batch per session vs one passage per call."""
    spec = importlib.util.spec_from_file_location("locomo_run", ROOT / "bench" / "locomo" / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    conversations = run.load(data)
    for label, batched in (("one batch per session (create_many)", True), ("one passage per call (create)", False)):
        questions = []
        started = time.perf_counter()
        for conv in conversations:
            agent = new_id("agent")
            with db.transaction() as conn:
                conn.execute(
                    "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                    (agent, org, "locomo", json.dumps(EmbeddingConfig.default().model_dump())),
                )
                archive = archives.create(conn, org, f"locomo-{conv['id']}")
                archives.attach(conn, org, agent, archive.id)
            for when, turns in conv["sessions"]:
                items = [archival.PassageInput(text, metadata={"dia_id": dia}, created_at=when) for dia, text in turns]
                calls = [items] if batched else [[item] for item in items]
                for call in calls:
                    with db.transaction() as conn:
                        archives.insert_passages(conn, org, archive.id, call)
            questions += [(agent, q) for q in conv["questions"]]
        ingest = time.perf_counter() - started
        result = run.evaluate(db, org, questions, None, None, run.search.EXACT_MAX_ROWS)
        recall10 = statistics.fmean(result["recall"][10])
        print(f"\nLoCoMo through an attached archive, {label}: R@10 {recall10:.3f} (ingest {ingest:.0f} s)")
        run.report(label, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--locomo", action="store_true", help="also LoCoMo R@10 through an archive")
    parser.add_argument("--baseline", action="store_true", help="also time one agent holding as many passages itself")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "locomo" / "locomo10.json")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    server = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-archives-bench-")), cleanup_mode="delete")
        url = server.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    try:
        with db.transaction() as conn:
            org = conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, %s) RETURNING id", (new_id("org"), new_id("bench"))
            ).fetchone()["id"]
        latency(db, org, args)
        if args.locomo:
            if not args.data.is_file():
                sys.exit(f"LoCoMo data not found at {args.data}")
            locomo(db, org, args.data)
    finally:
        db.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
