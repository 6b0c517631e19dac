"""Export and import speed of O's full bundle for an agent with 100k archival passages (384-d vectors).

Starts an embedded Postgres with two databases, fills one agent (synthetic sentences, random unit
vectors, written through the store as the archival engine writes them), then exports it to a file
through the domain (``o.agent.portable.bundle.export``, the bytes `GET /v1/agents/{id}/bundle`
streams) and imports that file into the second database (``bundle.read_into``, what
`POST /v1/agents/import-bundle` runs after spooling the upload). Prints, for each direction: seconds,
MB, MB/s, passages/s and this process' peak RSS above its level before the phase (sampled every 20 ms;
Postgres' own memory is not counted). The import includes Postgres maintaining the HNSW and full-text
indexes and the search statistics of every passage it writes, which is most of its time.

    python bench/bundle.py                    # 100k passages
    python bench/bundle.py --passages 10000
    python bench/bundle.py --passages 10000 --via-session   # the import through an upload session
    python bench/bundle.py --passages 10000 --via-session --run-seconds 60   # in runs of 60 s each

``--via-session`` imports the way a large bundle reaches a server: an upload session
(``o.agent.uploads``), its bytes streamed into the local blob store as O's own PUT route does, completed,
and the import job run (``o.agent.transfer_jobs``: the stored bundle verified whole, then applied in
chunks of ~20 s, each committed with the job's cursor); the time covers storing the bytes, the job and
reading its result. ``--run-seconds`` gives each run of the job that budget, as the ingest function's
invocations have one: a run out of time hands the job on and the next run resumes it (reading the
bundle again up to its cursor); the runs it took are printed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from o.agent import lifecycle, transfer_jobs, uploads  # noqa: E402
from o.agent.file_services import FileServices, TransferServices  # noqa: E402
from o.agent.portable import bundle  # noqa: E402
from o.ids import new_id  # noqa: E402
from o.memory.files.blobs import LocalBlobStore  # noqa: E402
from o.store import orgs  # noqa: E402
from o.store import passages as passage_store  # noqa: E402
from o.store.db import Database  # noqa: E402
from o.store.embedded import EmbeddedPostgres  # noqa: E402
from o.store.migrate import migrate  # noqa: E402

DIM = 384
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi") for b in ("pa", "de", "zu", "gor", "len")]


class PeakRss:
    """The process' peak RSS above where it was when the phase began."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 1e6


def fill(db: Database, org: str, agent_id: str, count: int, batch: int = 2000) -> float:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for done in range(0, count, batch):
        n = min(batch, count - done)
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [
            passage_store.NewPassage(text=" ".join(rng.choice(WORDS, int(rng.integers(8, 30)))), embedding=vectors[i])
            for i in range(n)
        ]
        with db.transaction() as conn:
            passage_store.insert_many(
                conn, org, agent_id, rows, model="all-MiniLM-L6-v2", dim=DIM, new_id=lambda: new_id("passage")
            )
    return time.perf_counter() - started


def through_session(
    db: Database, org: str, source: Any, size: int, scratch: Path, run_seconds: float | None
) -> dict[str, int]:
    """The bundle sent to an upload session, completed, and its import job run (in runs of
    ``run_seconds`` each, if given); the rows imported."""
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-bench-blobs-", dir=scratch)))
    services = TransferServices(blobs)  # announced to nobody: the job is run here, on this thread
    created = uploads.create(db, services, org, uploads.NewUpload("bundle", size))
    with blobs.writer(created.row["blob_key"]) as out:  # what O's PUT route does with the request body
        while piece := source.read(1024 * 1024):
            out.write(piece)
    uploads.complete(db, services, FileServices(blobs), org, created.row["id"])
    jobs, runs = transfer_jobs.Jobs(db, blobs, lease_s=3600), 0
    while True:
        ran = transfer_jobs.run(jobs, created.row["id"], _budget(run_seconds))
        runs += 1
        if ran is None or not ran.handed_on:
            break
    print(f"  the import job took {runs} run(s)")
    state = uploads.get(db, org, created.row["id"])
    assert state["status"] == "completed", state
    shutil.rmtree(blobs.root)
    rows: dict[str, int] = state["result"]["rows"]
    return rows


def _budget(seconds: float | None) -> transfer_jobs.Budget:
    """The time a run has left, counted from now (None: no limit)."""
    if seconds is None:
        return None
    ends = time.monotonic() + seconds
    return lambda: ends - time.monotonic()


def second_database(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE o_bench_target")
    target = make_conninfo(**{**conninfo_to_dict(url), "dbname": "o_bench_target"})
    migrate(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--via-session", action="store_true", help="import through an upload session and its job")
    parser.add_argument("--run-seconds", type=float, help="with --via-session: each run of the job's time budget")
    args = parser.parse_args()
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-bundle-")), cleanup_mode="delete")
    try:
        migrate(server.url)
        source, target = Database(server.url).open(), Database(second_database(server.url)).open()
        with source.transaction() as conn:
            # filling is not what is measured: the source fills without its HNSW index (an export
            # reads by agent, not by vector); the target keeps every index, as a real server has
            conn.execute("DROP INDEX passages_emb_384")
        with source.transaction() as conn:
            org = orgs.get_or_create_org(conn, "bench")["id"]
            agent = lifecycle.create(
                conn, org, lifecycle.AgentSpec(name="big", llm_config={"model": "gpt-4o-mini"})
            ).agent["id"]
        seconds = fill(source, org, agent, args.passages)
        print(f"filled {args.passages} passages in {seconds:.1f} s ({args.passages / seconds:.0f}/s)")
        path = Path(tempfile.mkdtemp(prefix="o-bench-bundle-file-")) / "agent.bundle"

        with PeakRss() as rss, path.open("wb") as out:
            started = time.perf_counter()
            for chunk in bundle.export(source, org, agent):
                out.write(chunk)
            seconds = time.perf_counter() - started
        size = path.stat().st_size / 1e6
        print(
            f"export: {seconds:.1f} s, {size:.1f} MB, {size / seconds:.1f} MB/s, "
            f"{args.passages / seconds:.0f} passages/s, peak RSS +{rss.mb:.0f} MB"
        )

        with target.transaction() as conn:
            target_org = orgs.get_or_create_org(conn, "bench")["id"]
        with PeakRss() as rss, path.open("rb") as source_file:
            started = time.perf_counter()
            if args.via_session:
                rows = through_session(
                    target, target_org, source_file, path.stat().st_size, path.parent, args.run_seconds
                )
            else:
                with target.transaction() as conn:
                    rows = bundle.read_into(conn, target_org, source_file).rows
            seconds = time.perf_counter() - started
        assert rows["passages"] == args.passages, rows
        how = "import via an upload session" if args.via_session else "import"
        print(
            f"{how}: {seconds:.1f} s, {size:.1f} MB, {size / seconds:.1f} MB/s, "
            f"{args.passages / seconds:.0f} passages/s, peak RSS +{rss.mb:.0f} MB"
        )
        source.close()
        target.close()
        path.unlink()
        path.parent.rmdir()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
