"""Archival search latency and insert throughput at 10k (and, with --big, 100k) passages in one agent.

Passages are synthetic: sentences of Zipf-distributed words from a 20,000-word vocabulary (so word
frequencies look like text), each with a random unit vector drawn around one of 500 topic centres
(so the HNSW graph has neighbourhoods to find). Search latency is measured through the real engine
(``archival.search_hits``: both SQL statements, BM25 + HNSW + fusion) with the query vector given;
the local embedder's time for one query is measured and printed separately, and the end-to-end
figure is their sum. Insert throughput is printed for the SQL write path (vectors given) and for the
whole path with the local embedder (``archival.insert``).

    python bench/archival_latency.py            # 10k passages
    python bench/archival_latency.py --big      # then grow the same agent to 100k
    python bench/archival_latency.py --mixed 10000   # then add other agents' 1536-d and 768-d passages to
                                                     # the same tables and measure the 384-d agent again

Vectors of different sizes share the ``passages`` table (one column and HNSW index per width; see
o/store/passages.py): ``--mixed`` shows what other widths' rows cost a 384-d agent's search.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from o.ids import new_id  # noqa: E402
from o.memory import archival  # noqa: E402
from o.memory.embeddings import EmbeddingConfig, local_embedder, normalize  # noqa: E402
from o.store import passages as store  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402

DIM = 384
VOCABULARY = 20_000
TOPICS = 500
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pa", "de", "zu", "gor", "len", "bri", "tam"]


class Corpus:
    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        words: set[str] = set()
        while len(words) < VOCABULARY:
            n = int(self.rng.integers(2, 5))
            words.add("".join(self.rng.choice(SYLLABLES, n)))
        self.words = sorted(words)
        ranks = np.arange(1, VOCABULARY + 1)
        self.p = (1 / ranks**1.1) / (1 / ranks**1.1).sum()
        self.centres = normalize(self.rng.normal(size=(TOPICS, DIM)))

    def sentence(self, lo: int = 8, hi: int = 30) -> str:
        n = int(self.rng.integers(lo, hi))
        return " ".join(self.words[i] for i in self.rng.choice(VOCABULARY, n, p=self.p)) + "."

    def vectors(self, n: int) -> np.ndarray:
        topics = self.rng.integers(0, TOPICS, n)
        return normalize(self.centres[topics] + 0.08 * self.rng.normal(size=(n, DIM)).astype(np.float32))

    def wide_vectors(self, n: int, dim: int) -> np.ndarray:
        """Vectors of another model's size, clustered like the 384-d ones."""
        centres = normalize(np.random.default_rng(dim).normal(size=(TOPICS, dim)))
        topics = self.rng.integers(0, TOPICS, n)
        return normalize(centres[topics] + 0.08 * self.rng.normal(size=(n, dim)).astype(np.float32))


def grow(
    db: Database,
    org: str,
    agent: str,
    corpus: Corpus,
    count: int,
    batch: int = 500,
    *,
    dim: int = DIM,
    model: str = "all-MiniLM-L6-v2",
) -> float:
    """Insert ``count`` synthetic passages through the store; returns passages per second."""
    started = time.perf_counter()
    done = 0
    while done < count:
        n = min(batch, count - done)
        vectors = corpus.vectors(n) if dim == DIM else corpus.wide_vectors(n, dim)
        rows = [store.NewPassage(text=corpus.sentence(), embedding=vectors[i]) for i in range(n)]
        with db.transaction() as conn:
            store.insert_many(conn, org, agent, rows, model=model, dim=dim, new_id=lambda: new_id("passage"))
        done += n
    return count / (time.perf_counter() - started)


def add_agent(db: Database, org: str, config: dict[str, object]) -> str:
    agent_id = new_id("agent")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
            (agent_id, org, "bench", json.dumps(config)),
        )
    return agent_id


def report(label: str, timings: list[float], top_k: int) -> None:
    print(
        f"{label}: search top {top_k}  p50 {pct(timings, 0.5):.1f} ms  p95 {pct(timings, 0.95):.1f} ms  "
        f"mean {1000 * statistics.fmean(timings):.1f} ms"
    )


def mixed(db: Database, org: str, agent: str, corpus: Corpus, count: int, queries: int, top_k: int) -> None:
    """Other agents' vectors of other widths join the same tables; the 384-d agent is measured again."""
    for dim, model in ((1536, "text-embedding-3-small"), (768, "nomic-embed-text")):
        kind = "openai" if dim == 1536 else "ollama"
        other = add_agent(db, org, {"embedding_endpoint_type": kind, "embedding_model": model, "embedding_dim": dim})
        rate = grow(db, org, other, corpus, count, dim=dim, model=model)
        print(f"another agent: {count:,} passages of {dim}-d ({model}) inserted at {rate:,.0f} passages/s")
        if dim == 1536:
            wide = other
    with db.transaction() as conn:
        conn.execute("ANALYZE passages")
    measure(db, org, agent, corpus, 20, top_k)
    report(
        "384-d agent, table also holding 1536-d and 768-d rows", measure(db, org, agent, corpus, queries, top_k), top_k
    )
    timings = []
    for _ in range(queries):
        started = time.perf_counter()
        with db.transaction() as conn:
            hits = archival.search_hits(
                conn, org, wide, corpus.sentence(3, 9), top_k=top_k, query_vector=corpus.wide_vectors(1, 1536)[0]
            )
        timings.append(time.perf_counter() - started)
        assert hits and all(h.passage.embedding_dim == 1536 for h in hits)
    report(f"1536-d agent ({count:,} passages)", timings, top_k)


def measure(db: Database, org: str, agent: str, corpus: Corpus, queries: int, top_k: int) -> list[float]:
    timings: list[float] = []
    for _ in range(queries):
        text = corpus.sentence(3, 9)
        vector = corpus.vectors(1)[0]
        started = time.perf_counter()
        with db.transaction() as conn:
            hits = archival.search_hits(conn, org, agent, text, top_k=top_k, query_vector=vector)
        timings.append(time.perf_counter() - started)
        assert hits, "a search over a filled memory returned nothing"
    return timings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", action="store_true", help="also measure at 100k passages (takes minutes)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--mixed", type=int, default=0, help="then add this many 1536-d and 768-d passages")
    args = parser.parse_args()

    server = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-archival-bench-")), cleanup_mode="delete")
        url = server.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    corpus = Corpus()
    try:
        with db.transaction() as conn:
            org = conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, %s) RETURNING id", (new_id("org"), new_id("bench"))
            ).fetchone()["id"]
            agents = [new_id("agent") for _ in range(2)]
            for agent_id in agents:
                conn.execute(
                    "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                    (agent_id, org, "bench", json.dumps(EmbeddingConfig.default().model_dump())),
                )
        agent, small = agents

        # End-to-end inserts with the local embedder (the path of the API and the agent's tool).
        embedder = local_embedder()
        embedder.embed(["warm up"])
        texts = [corpus.sentence() for _ in range(1000)]
        started = time.perf_counter()
        for i in range(0, len(texts), 100):
            with db.transaction() as conn:
                archival.insert(conn, org, small, [archival.PassageInput(t) for t in texts[i : i + 100]], chunk=False)
        e2e_rate = len(texts) / (time.perf_counter() - started)
        one = []
        for text in texts[:200]:
            t0 = time.perf_counter()
            embedder.embed([text[:80]])
            one.append(time.perf_counter() - t0)

        print("archival engine: latency and throughput (synthetic passages, one agent, 2-core machine)")
        print(f"insert, local embedder included (batches of 100): {e2e_rate:,.0f} passages/s")
        print(
            f"query embedding alone (local MiniLM, 1 thread): p50 {pct(one, 0.5):.1f} ms  p95 {pct(one, 0.95):.1f} ms"
        )
        sizes = [10_000, 100_000] if args.big else [10_000]
        have = 0
        for size in sizes:
            rate = grow(db, org, agent, corpus, size - have)
            have = size
            with db.transaction() as conn:
                conn.execute("ANALYZE passages")
            measure(db, org, agent, corpus, 20, args.top_k)  # warm the caches
            timings = measure(db, org, agent, corpus, args.queries, args.top_k)
            print(
                f"{size:>7,} passages: insert (vectors given, HNSW + GIN + BM25 stats maintained) "
                f"{rate:,.0f} passages/s"
            )
            print(
                f"{size:>7,} passages: search top {args.top_k}  p50 {pct(timings, 0.5):.1f} ms  "
                f"p95 {pct(timings, 0.95):.1f} ms  mean {1000 * statistics.fmean(timings):.1f} ms  "
                f"(+ query embedding p50 {pct(one, 0.5):.1f} ms end to end)"
            )
        if args.mixed:
            mixed(db, org, agent, corpus, args.mixed, args.queries, args.top_k)
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        db.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
