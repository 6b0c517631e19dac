"""Archival hybrid search at scale, and bulk loading with precomputed embeddings.

Two shapes in one table, as in the issue: ``--passages`` spread over ``--agents`` agents of one
organization (a search filtered to one of them: an exact scan of its rows, o/store/search_vectors.py),
and as many passages again in ONE agent (HNSW with pgvector's iterative scan). Passages are the
synthetic ones of bench/archival_latency.py (Zipf words, vectors clustered around 500 topics), 384-d as
the local model's, generated before each chunk and not timed.

Bulk load: through O's own path, ``o.store.passages.insert_many`` (what ``archival.store_passages``
calls once it has the embeddings; the vectors go binary, each row's weighted tsvector and length are
computed in Postgres, the BM25 statistics trigger runs once per statement), one call per agent and
chunk (at most ``--batch`` passages a call), with every index in place, as O runs. The HNSW graph holds
only the rows of owners over ``EXACT_MAX_ROWS`` (schema 025): the small agents' rows skip it, and the
large agent's rows join it from the call that takes it over the threshold (which adds its earlier rows
once). Figures: the small agents' load, the large agent's (crossing included), then ``--incremental``
more passages into the small agents and as many into the large one. ``--build-hnsw-after`` drops the
graph for the first load and builds it once afterwards (a large table made in reasonable time).

Search: ``archival.search_hits`` (both statements, BM25 + vector + fusion) with the query vector given,
p50/p95 over ``--queries`` queries after a warm-up; recall@10 of the vector half (the same search with
the lexical weight 0) against an exact scan of the agent's rows.

    python bench/search_scale.py [--passages 1000000] [--agents 100] [--queries 200] [--database-url URL]

1,000,000 passages per shape are ≈ 4.5 GB of table and ≈ 4 GB of HNSW graph (2M rows); watch
``df -h``, and give the server memory (``--database-url`` of a server with shared_buffers of a few
GB). On a small shared machine start lower (``--passages 100000``).
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
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.archival_latency import Corpus  # noqa: E402
from o.ids import new_id  # noqa: E402
from o.memory import archival  # noqa: E402
from o.memory.archival import CONTEXT_WINDOW  # noqa: E402
from o.memory.embeddings import EmbeddingConfig  # noqa: E402
from o.memory.passage_index import with_context  # noqa: E402
from o.store import passages as store  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402

DIM = 384
MODEL = "all-MiniLM-L6-v2"
INDEX = "passages_emb_384"
CHUNK = 20_000


def sentences(corpus: Corpus, n: int, lo: int = 8, hi: int = 30) -> list[str]:
    """``n`` sentences like ``Corpus.sentence``, drawn in one numpy call (``Corpus.sentence`` costs
    ≈ 0.7 ms each: 12 minutes of a million-passage run)."""
    lengths = corpus.rng.integers(lo, hi, n)
    words = np.asarray(corpus.words)[corpus.rng.choice(len(corpus.words), int(lengths.sum()), p=corpus.p)]
    ends = np.cumsum(lengths)
    return [" ".join(words[end - k : end]) + "." for end, k in zip(ends.tolist(), lengths.tolist(), strict=True)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def new_agents(db: Database, org: str, n: int) -> list[str]:
    ids = [new_id("agent") for _ in range(n)]
    config = json.dumps(EmbeddingConfig.default().model_dump())
    with db.transaction() as conn:
        for agent_id in ids:
            conn.execute(
                "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
                (agent_id, org, "bench", config),
            )
    return ids


def load(db: Database, org: str, agents: list[str], corpus: Corpus, count: int, batch: int) -> dict[str, float]:
    """``count`` passages spread evenly over ``agents``, through O's own bulk path: per chunk, one
    ``o.store.passages.insert_many`` call per agent (its passages' contexts and context-mixed vectors
    from ``o.memory.passage_index.with_context``, as ``archival.store_passages`` makes them after
    embedding) of at most ``batch`` passages, one transaction per chunk. Returns the seconds of each part."""
    seconds = {"generate": 0.0, "insert": 0.0, "server_cpu": 0.0, "client_cpu": 0.0}
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        t0 = time.perf_counter()
        vectors = corpus.vectors(n).astype(np.float32)
        texts = sentences(corpus, n)
        t1, c1 = time.perf_counter(), time.process_time()
        with db.transaction() as conn:
            s1 = backend_cpu(conn)
            for k, agent in enumerate(agents):
                mine = texts[k :: len(agents)]
                if mine:
                    contexts, mixed = with_context(mine, vectors[k :: len(agents)], CONTEXT_WINDOW)
                    rows = [store.NewPassage(t, mixed[i], contexts[i]) for i, t in enumerate(mine)]
                    for at in range(0, len(rows), batch):
                        store.insert_many(
                            conn,
                            org,
                            agent,
                            rows[at : at + batch],
                            model=MODEL,
                            dim=DIM,
                            new_id=lambda: new_id("passage"),
                        )
            s2 = backend_cpu(conn)
        t2 = time.perf_counter()
        seconds["server_cpu"] += s2 - s1
        seconds["client_cpu"] += time.process_time() - c1
        seconds["generate"] += t1 - t0
        seconds["insert"] += t2 - t1
        done += n
    return seconds


def backend_cpu(conn: psycopg.Connection) -> float:
    """CPU seconds the connection's Postgres backend has used (user + system), read from /proc when the
    server runs on this machine (NaN otherwise): on a shared machine wall time says more about the
    neighbours than about the insert."""
    try:
        fields = Path(f"/proc/{conn.info.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_rate(rows: int, part: dict[str, float]) -> str:
    cpu = part["server_cpu"] + part["client_cpu"]
    return (
        f"{rows / part['insert']:,.0f} passages/s ({part['insert']:.1f} s; {rows / cpu:,.0f} passages per "
        f"CPU-second: Postgres backend {part['server_cpu']:.1f} s, this process {part['client_cpu']:.1f} s)"
    )


def vacuum(url: str) -> float:
    """VACUUM ANALYZE (what autovacuum does after a large insert)."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE passages")
    return time.perf_counter() - t0


def build_index(db: Database, *, halfvec: bool = False) -> float:
    t0 = time.perf_counter()
    with db.transaction() as conn:
        # as schema/002_archival.sql makes it (pgvector's defaults: m 16, ef_construction 64); the build
        # keeps the graph in memory when maintenance_work_mem holds it (≈ 2 GB per million 384-d rows)
        conn.execute("SET LOCAL maintenance_work_mem = '5GB'")
        if halfvec:  # what a half-precision index would cost (not what the schema makes)
            conn.execute(f"CREATE INDEX {INDEX}_half ON passages USING hnsw "
                         "((embedding_384::halfvec(384)) halfvec_cosine_ops)")  # fmt: skip
        else:
            conn.execute(
                f"CREATE INDEX {INDEX} ON passages USING hnsw (embedding_384 vector_cosine_ops) WHERE in_graph"
            )
        conn.execute("ANALYZE passages")
    return time.perf_counter() - t0


def searches(db: Database, org: str, agent: str, corpus: Corpus, queries: int) -> list[float]:
    timings = []
    for i in range(queries + 20):
        text, vector = corpus.sentence(3, 9), corpus.vectors(1)[0]
        t0 = time.perf_counter()
        with db.transaction() as conn:
            hits = archival.search_hits(conn, org, agent, text, top_k=10, query_vector=vector)
        if i >= 20:
            timings.append(time.perf_counter() - t0)
        assert hits, "a search over a filled memory returned nothing"
    return timings


def recall_at_10(db: Database, org: str, agent: str, corpus: Corpus, queries: int) -> float:
    """The vector half's top 10 (the search with the lexical weight 0, exactly as the product runs it)
    against the exact top 10 over the agent's rows (a sequential scan, no index), averaged."""
    found = 0
    for _ in range(queries):
        vector = corpus.vectors(1)[0]
        with db.transaction() as conn:
            hits = archival.search_hits(conn, org, agent, "x", top_k=10, query_vector=vector, weights=(0.0, 1.0))
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            exact = conn.execute(
                "SELECT id FROM passages WHERE agent_id = %s ORDER BY embedding_384 <=> %s::vector LIMIT 10",
                (agent, store.vector_literal(vector, DIM)),
            ).fetchall()
        found += len({h.passage.id for h in hits} & {r["id"] for r in exact})
    return found / (10 * queries)


def report(label: str, timings: list[float], recall: float | None = None) -> None:
    print(
        f"  {label:<58} p50 {pct(timings, 0.5):6.1f} ms  p95 {pct(timings, 0.95):6.1f} ms  "
        f"mean {1000 * statistics.fmean(timings):6.1f} ms" + ("" if recall is None else f"  recall@10 {recall:.3f}")
    )


def table_size(db: Database) -> str:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('passages')) AS t, pg_size_pretty(pg_relation_size(%s)) AS i",
            (INDEX,),
        ).fetchone()
    return f"table {row['t']}, HNSW index {row['i']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--incremental", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=5_000, help="most passages of one insert_many call")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--recall-queries", type=int, default=30)
    parser.add_argument("--halfvec", action="store_true", help="also time a halfvec HNSW build over the same rows")
    parser.add_argument(
        "--build-hnsw-after", action="store_true", help="drop the graph for the first load and build it afterwards"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    server = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-search-scale-")), cleanup_mode="delete")
        url = server.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    corpus = Corpus()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    try:
        with db.transaction() as conn:
            org = conn.execute(
                "INSERT INTO organizations (id, name) VALUES (%s, %s) RETURNING id", (new_id("org"), new_id("bench"))
            ).fetchone()["id"]
            if args.build_hnsw_after:
                conn.execute(f"DROP INDEX {INDEX}")
        agents = new_agents(db, org, args.agents)
        [single] = new_agents(db, org, 1)
        spread = load(db, org, agents, corpus, args.passages, args.batch)
        alone = load(db, org, [single], corpus, args.passages, args.batch)
        vacuum_s = vacuum(url)
        if args.halfvec:
            print(f"HNSW build as halfvec(384) over {2 * args.passages:,} rows: {build_index(db, halfvec=True):.0f} s")
            with db.transaction() as conn:
                conn.execute(f"DROP INDEX {INDEX}_half")
        built = (
            f"HNSW built afterwards {build_index(db):.0f} s; " if args.build_hnsw_after else "every index in place; "
        )
        print(
            f"bulk load through insert_many (embeddings precomputed, calls of at most {args.batch:,}; {built}"
            f"VACUUM ANALYZE {vacuum_s:.0f} s after; generating the synthetic data "
            f"{spread['generate'] + alone['generate']:.0f} s not counted):"
        )
        print(f"  {args.passages:,} over {args.agents} agents (small, no graph): {cpu_rate(args.passages, spread)}")
        print(
            f"  {args.passages:,} in one agent (in the graph once over the threshold): {cpu_rate(args.passages, alone)}"
        )
        print(f"  {table_size(db)}")
        inc = load(db, org, agents, corpus, args.incremental, args.batch)
        inc_large = load(db, org, [single], corpus, args.incremental, args.batch)
        print(f"incremental load of {args.incremental:,} more with every index in place (what O does):")
        print(f"  over the {args.agents} small agents: {cpu_rate(args.incremental, inc)}")
        print(f"  into the large agent: {cpu_rate(args.incremental, inc_large)}")
        rows = 2 * args.passages + 2 * args.incremental
        per_agent = (args.passages + args.incremental) // args.agents
        print(f"search, top 10, query vector given ({args.queries} queries after 20 warm-up), table {rows:,} rows:")
        report(f"one org, {args.agents} agents: one agent's {per_agent:,} passages",
               searches(db, org, agents[0], corpus, args.queries),
               recall_at_10(db, org, agents[0], corpus, args.recall_queries))  # fmt: skip
        report(f"one agent holding {args.passages + args.incremental:,} passages",
               searches(db, org, single, corpus, args.queries),
               recall_at_10(db, org, single, corpus, args.recall_queries))  # fmt: skip
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        db.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
