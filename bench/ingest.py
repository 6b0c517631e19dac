"""File ingestion throughput and file search latency.

Ingestion: a generated multi-page PDF (tests/data/files/make_files.py writes it the same way) is
uploaded through the domain (bytes to the blob store, the file row) and processed by the real
ingestion (``process_next``: pypdf, chunking, the local ONNX embedder, the chunk inserts); printed
as pages/s and chunks/s, with the parse alone timed too, and the process's peak RSS.

Search: synthetic chunks (Zipf words, unit vectors around 500 topic centres, as bench/archival_latency.py)
in a folder attached to an agent, 10k and then 100k of them; p50/p95 of the hybrid search (BM25 +
vector, three corpus words as the query) the ``semantic_search_files`` tool runs (query vector
given), of the same with the local embedder's
query embedding, and of ``grep_files`` over the attached files.

    python bench/ingest.py                 # pages 200, chunks 10k and 100k
    python bench/ingest.py --pages 50 --no-big
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from o.agent import folders  # noqa: E402
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbeddingConfig, local_embedder, normalize  # noqa: E402
from o.memory.files import parsers, views  # noqa: E402
from o.memory.files.blobs import LocalBlobStore  # noqa: E402
from o.memory.files.ingest import Ingestion, process_next  # noqa: E402
from o.store import files as file_store  # noqa: E402
from o.store import orgs  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402
from tests.data.files.make_files import pdf  # noqa: E402

DIM = 384
TOPICS = 500


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000 if len(values) > 1 else values[0] * 1000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def document(pages: int, rng: np.random.Generator, words: list[str]) -> bytes:
    body = []
    for p in range(pages):
        lines = [f"Section {p + 1}"]
        lines += [" ".join(rng.choice(words, 12)) + "." for _ in range(36)]
        body.append(lines)
    return pdf(body)


def bench_ingest(db: Database, blobs: LocalBlobStore, org: str, pages: int, words: list[str]) -> None:
    rng = np.random.default_rng(3)
    data = document(pages, rng, words)
    started = time.perf_counter()
    doc = parsers.parse("report.pdf", data)
    parse_s = time.perf_counter() - started
    with db.transaction() as conn:
        folder = folders.create(conn, org, {"name": f"ingest-{pages}"})
    row, _ = folders.upload(db, blobs, org, folder["id"], folders.Upload("report.pdf", None, data))
    local_embedder().embed(["warm up"])
    started = time.perf_counter()
    assert process_next(Ingestion(db, blobs, LOCAL_EMBEDDERS), row["id"]) == row["id"]
    total_s = time.perf_counter() - started
    with db.read() as conn:
        done = file_store.get(conn, org, row["id"])
    assert done is not None and done["processing_status"] == "completed", done
    chunks = int(done["chunks_embedded"])
    print(f"ingestion of a {pages}-page PDF ({len(data) / 1e6:.1f} MB, {doc.page_count} pages, {chunks} chunks):")
    print(f"  parse alone (pypdf): {parse_s:.2f} s = {pages / parse_s:,.0f} pages/s")
    print(f"  whole job (parse, chunk, embed locally, store): {total_s:.1f} s = {pages / total_s:,.1f} pages/s, "
          f"{chunks / total_s:,.1f} chunks/s")  # fmt: skip
    print(f"  peak RSS so far: {rss_mb():,.0f} MB")


def grow(db: Database, org: str, agent: str, target: int, words: list[str], state: dict[str, object]) -> None:
    """Add synthetic completed files of 1,000 chunks each to the attached folder until it holds ``target``."""
    rng: np.random.Generator = state["rng"]  # type: ignore[assignment]
    centres: np.ndarray = state["centres"]  # type: ignore[assignment]
    folder: dict[str, object] = state["folder"]  # type: ignore[assignment]
    have = int(state["chunks"])  # type: ignore[call-overload]
    while have < target:
        with db.transaction() as conn:
            row = file_store.insert(conn, {
                "id": f"file-bench-{have}", "organization_id": org, "folder_id": folder["id"],
                "file_name": f"notes-{have}.txt", "original_file_name": "notes.txt", "file_type": "text/plain",
                "file_size": 0, "blob_key": "",
            })  # fmt: skip
            texts = [" ".join(rng.choice(words, int(rng.integers(20, 60)))) for _ in range(1000)]
            vectors = normalize(centres[rng.integers(0, TOPICS, 1000)] + 0.08 * rng.normal(size=(1000, DIM)))
            chunks = [
                file_store.NewChunk(i, t, i * 3 + 1, i * 3 + 3, None, "", v)
                for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
            ]
            file_store.parsed(conn, row["id"], "\n".join(texts), len(chunks))
            file_store.insert_chunks(conn, row, chunks, model="all-MiniLM-L6-v2", dim=DIM)
            file_store.finish(conn, row["id"])
        have += 1000
    state["chunks"] = have
    with db.transaction() as conn:
        conn.execute("ANALYZE file_chunks")
    del agent


# The vector-only statement semantic_search_files ran before it was hybrid, timed beside it (same
# load, same data) so the two compare on this machine as it is.
PREVIOUS = """SELECT c.file_id, c.seq, c.text, c.start_line, c.end_line, c.page, c.heading, f.file_name,
                     1 - (c.embedding_384 <=> %(v)s::vector(384)) AS score
              FROM file_chunks c JOIN folder_files f ON f.id = c.file_id
              WHERE c.folder_id = ANY(%(folders)s) AND c.embedding_model = %(model)s AND c.embedding_dim = 384
                AND f.processing_status = 'completed'
              ORDER BY c.embedding_384 <=> %(v)s::vector(384) LIMIT 5"""


def bench_search(db: Database, org: str, agent: str, n: int, queries: int, rng: np.random.Generator,
                 centres: np.ndarray, words: list[str], folder_id: str) -> None:  # fmt: skip
    sql_only, previous, with_embed, grep = [], [], [], []
    embedder = local_embedder()
    for _ in range(queries):
        vector = normalize(centres[rng.integers(0, TOPICS, 1)] + 0.08 * rng.normal(size=(1, DIM)))[0]
        text = " ".join(rng.choice(words[:2000], 3))  # words of the corpus: the full-text half has work to do
        t0 = time.perf_counter()
        with db.read() as conn:
            views.search_hits(conn, org, agent, text, LOCAL_EMBEDDERS, 5, query_vector=vector)
        sql_only.append(time.perf_counter() - t0)
        literal = "[" + ",".join(f"{x:.6g}" for x in vector) + "]"
        t0 = time.perf_counter()
        with db.read() as conn:
            conn.execute(PREVIOUS, {"v": literal, "folders": [folder_id], "model": "all-MiniLM-L6-v2"}).fetchall()
        previous.append(time.perf_counter() - t0)
    for _ in range(max(20, queries // 5)):
        t0 = time.perf_counter()
        with db.read() as conn:
            views.search(conn, org, agent, "which topic is about the harbour", LOCAL_EMBEDDERS, 5)
        with_embed.append(time.perf_counter() - t0)
    for _ in range(5):
        t0 = time.perf_counter()
        with db.read() as conn:
            views.grep(conn, agent, "zzqx")
        grep.append(time.perf_counter() - t0)
    del embedder
    print(f"search over {n:,} chunks in an attached folder:")
    print(f"  hybrid search (semantic_search_files, BM25 + vector, query vector given): "
          f"p50 {pct(sql_only, .5):.1f} ms  "
          f"p95 {pct(sql_only, .95):.1f} ms")  # fmt: skip
    print(f"  the previous vector-only statement, timed beside it: p50 {pct(previous, .5):.1f} ms  "
          f"p95 {pct(previous, .95):.1f} ms")  # fmt: skip
    print(f"  with the query embedded locally: p50 {pct(with_embed, 0.5):.1f} ms  p95 {pct(with_embed, 0.95):.1f} ms")
    print(f"  grep_files (a regex over every attached file's text): p50 {pct(grep, 0.5):.0f} ms")
    print(f"  peak RSS so far: {rss_mb():,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-big", action="store_true", help="search at 10k chunks only")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    server = None
    url = args.database_url
    if url is None:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-ingest-bench-")), cleanup_mode="delete")
        url = server.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    rng = np.random.default_rng(7)
    words = ["".join(rng.choice(list("aeioulmnrstkpg"), int(rng.integers(3, 9)))) for _ in range(5000)]
    try:
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, "ingest-bench")["id"]
        blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-ingest-bench-blobs-")))
        bench_ingest(db, blobs, org, args.pages, words)

        with db.transaction() as conn:
            folder = folders.create(
                conn, org, {"name": "search", "embedding_config": EmbeddingConfig.default().model_dump()}
            )
            agent = conn.execute(
                "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, 'bench', '{}')"
                " RETURNING id", (f"agent-bench-{time.time_ns()}", org),
            ).fetchone()["id"]  # fmt: skip
            conn.execute("INSERT INTO agent_folders (agent_id, folder_id) VALUES (%s, %s)", (agent, folder["id"]))
        centres = normalize(np.random.default_rng(11).normal(size=(TOPICS, DIM)))
        state: dict[str, object] = {"rng": rng, "centres": centres, "folder": folder, "chunks": 0}
        for n in (10_000,) if args.no_big else (10_000, 100_000):
            started = time.perf_counter()
            grow(db, org, agent, n, words, state)
            print(f"(stored synthetic chunks up to {n:,} in {time.perf_counter() - started:.0f} s)")
            bench_search(db, org, agent, n, args.queries, rng, centres, words, folder["id"])
    finally:
        db.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
