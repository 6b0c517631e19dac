"""The jobs of transfers: a bundle import from an upload session's stored bytes, and an export written to
the blob store. Each is a leased job on its ``transfers`` row (queued → running → completed | error).

A bundle import is verified whole first, then applied in chunks (:mod:`o.agent.portable.chunked`):
each chunk is ONE transaction that first locks the job's row under its claim and ends by storing the
import's cursor (renewing the lease of a run with no time limit), or, for the last, by marking the job
completed. A worker that dies mid-chunk loses that chunk only (the job is taken again when its lease
runs out, or its queue message comes back, and goes on from the cursor); a chunk committed is never
applied again, and a job whose import completed is never imported again — a retry, a duplicate
message or a second worker finds it completed. Until the last chunk the agent's rows wait in a
hidden organization, so nobody sees half an agent. A bad bundle is an ``error`` at once with the
reason, and what earlier chunks wrote is removed; any other failure is retried up to
``max_attempts`` times (counted since the last run that made progress).

A run given a time budget (``remaining``: the ingest function's invocation time left, less a margin)
stops between chunks once it is spent and hands the job on: queued again, and announced anew
(``requeue``: a message on the ingest queue). Locally a job runs on a thread of the process that
queued it, with no budget, and `o serve`'s :class:`Worker` takes jobs a dead process left; on AWS
the ingest function runs the job its queue message names.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from o.agent.portable import bundle, chunked, frames
from o.errors import OError
from o.memory.files.blobs import StagingStore
from o.observability import logger
from o.store import transfers as store
from o.store.db import Database

# an export is spooled here in memory up to this size, then on disk, before it goes to the blob store
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Jobs:
    db: Database
    blobs: StagingStore
    lease_s: float = 300.0
    max_attempts: int = 3
    # an import commits a chunk once it has applied frames for this long (one frame at least)
    chunk_s: float = 20.0
    # announces a job handed on for its next run (None: `o serve`'s Worker finds it queued)
    requeue: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Ran:
    upload_id: str
    # out of time: queued again (and announced) for a next run to go on with
    handed_on: bool = False


# seconds a run may still start a chunk in (None: no limit)
Budget = Callable[[], float] | None


def run(jobs: Jobs, upload_id: str | None = None, remaining: Budget = None) -> Ran | None:
    """Run one job (``upload_id`` if it is free to take), within ``remaining`` seconds for an import;
    what happened, or None when none was free."""
    with jobs.db.transaction() as conn:
        job = store.claim(conn, jobs.lease_s, upload_id)
    if job is None:
        return None
    try:
        if job["kind"] == "export":
            _export(jobs, job)
        elif not _import(jobs, job, remaining):
            _hand_on(jobs, job)
            return Ran(str(job["id"]), handed_on=True)
    except OError as exc:
        if exc.status_code >= 500:
            _retry_or_fail(jobs, job, exc.message)
        else:  # the bundle itself is wrong (truncated, tampered, newer): retrying cannot help
            _fail(jobs, job, exc.message)
    except Exception as exc:
        _retry_or_fail(jobs, job, f"{type(exc).__name__}: {exc}")
    return Ran(str(job["id"]))


def give_up(jobs: Jobs, upload_id: str, deliveries: int, quiet_s: float) -> bool:
    """End a job its queue gave up on (``deliveries`` runs, none of which finished it: killed, timed out,
    or failing before they could say so) in error, the way a bad bundle ends: what its committed chunks
    wrote is removed, and so are its uploaded bytes. Only a job still unfinished that no run is at: its
    lease run out, nothing written for ``quiet_s``. Whether the job is done with (ended now, or finished
    by itself, or gone); False while a run may be at it: ask again later."""
    with jobs.db.transaction() as conn:
        job = store.claim(conn, jobs.lease_s, upload_id, quiet_s=quiet_s)
    if job is None:
        return not unfinished(jobs, upload_id)
    what, again = (("import", "start a new upload session to import the bundle again") if job["kind"] == "bundle"
                   else ("export", "request the export again"))  # fmt: skip
    _fail(jobs, job, f"given up after {deliveries} deliveries to the ingest function, none of which finished the "
                     f"{what} (each run was stopped or failed); {again}")  # fmt: skip
    return True


def unfinished(jobs: Jobs, upload_id: str) -> bool:
    with jobs.db.read() as conn:
        return store.status(conn, upload_id) in store.UNFINISHED


def _import(jobs: Jobs, job: dict[str, Any], remaining: Budget) -> bool:
    """Import chunk after chunk; whether the import ended (False: out of time, to be handed on)."""
    progress = job["progress"]
    if not (progress or {}).get("verified"):
        with contextlib.closing(jobs.blobs.open(job["blob_key"])) as source:
            chunked.verify(source)
    with contextlib.closing(jobs.blobs.open(job["blob_key"])) as source:
        chunks = chunked.Chunks(
            job["organization_id"], source, progress, name=job["params"].get("name"), label=job["id"]
        )
        while True:
            enough = _chunk_end(jobs.chunk_s, remaining)
            with jobs.db.transaction() as conn:
                if not store.lock_running(conn, job["id"], job["claim_id"]):
                    logger.info("transfer job superseded", extra={"upload_id": job["id"]})
                    return True
                imported = chunks.step(conn, enough)
                if imported is not None:
                    store.finish(conn, job["id"], _result(imported))
                    break
                # a run with no time limit renews its lease; one with a budget ends before the lease
                # it took does (on AWS: past the invocation's timeout, so a killed run's job is free
                # again by the time its message comes back)
                renew = jobs.lease_s if remaining is None else None
                store.save_progress(conn, job["id"], chunks.progress(), renew)
            if _spent(remaining):
                return False
    logger.info("bundle imported from an upload", extra={"upload_id": job["id"], "agent_id": imported.agent_id})
    jobs.blobs.delete(job["blob_key"])  # imported for good: a retry finds the job completed, never the bytes
    return True


def _chunk_end(chunk_s: float, remaining: Budget) -> Callable[[], bool]:
    """Whether a chunk begun now has run long enough (or the run is out of time)."""
    started = time.monotonic()
    return lambda: _spent(remaining) or time.monotonic() - started >= chunk_s


def _spent(remaining: Budget) -> bool:
    return remaining is not None and remaining() <= 0


def _result(imported: bundle.Imported) -> dict[str, Any]:
    return {"agent_id": imported.agent_id, "rows": imported.rows, "unset_variables": imported.unset_variables,
            "reused_tools": imported.reused_tools}  # fmt: skip


def _hand_on(jobs: Jobs, job: dict[str, Any]) -> None:
    logger.info("transfer job out of time; handed on", extra={"upload_id": job["id"]})
    with jobs.db.transaction() as conn:
        store.hand_off(conn, job["id"], job["claim_id"])
    if jobs.requeue is not None:
        jobs.requeue(job["id"])


def _export(jobs: Jobs, job: dict[str, Any]) -> None:
    """The bundle, written to a spool and then to the blob store (a multipart upload on S3); the row
    is completed only once the bytes are there, so a retry writes them again under the same key."""
    agent_id = job["params"]["agent_id"]
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        for piece in bundle.export(jobs.db, job["organization_id"], agent_id):
            spool.write(piece)
        size = spool.tell()
        spool.seek(0)
        jobs.blobs.put_file(job["blob_key"], spool, frames.MEDIA_TYPE)  # type: ignore[arg-type]
    with jobs.db.transaction() as conn:
        if store.lock_running(conn, job["id"], job["claim_id"]):
            store.finish(conn, job["id"], {"agent_id": agent_id, "size": size})


def _fail(jobs: Jobs, job: dict[str, Any], message: str) -> None:
    """The job ends in error: what its committed chunks wrote is removed, and so are the uploaded bytes
    (nothing will read them again)."""
    logger.info("transfer job failed", extra={"upload_id": job["id"], "error": message})
    with jobs.db.transaction() as conn:
        if not store.lock_running(conn, job["id"], job["claim_id"]):
            return
        if job["kind"] == "bundle":
            chunked.discard(conn, store.progress(conn, job["id"]))
        store.fail(conn, job["id"], message)
    if job["kind"] == "bundle":
        jobs.blobs.delete(job["blob_key"])


def _retry_or_fail(jobs: Jobs, job: dict[str, Any], reason: str) -> None:
    if job["attempts"] >= jobs.max_attempts:
        _fail(jobs, job, f"the job failed {job['attempts']} times; last error: {reason}")
        return
    logger.warning("transfer job failed; it will be retried", extra={"upload_id": job["id"], "error": reason})
    with jobs.db.transaction() as conn:
        store.release(conn, job["id"], job["claim_id"])


def launch(jobs: Jobs) -> Any:
    """Locally: run each announced job at once on a thread of its own (it outlives the request)."""

    def announce(upload_id: str) -> None:
        threading.Thread(target=_run_logged, args=(jobs, upload_id), name="o-transfer", daemon=True).start()

    return announce


def _run_logged(jobs: Jobs, upload_id: str | None) -> Ran | None:
    try:
        return run(jobs, upload_id)
    except Exception:
        logger.exception("transfer job runner failed")
        return None


class Worker:
    """`o serve`'s poller for jobs no thread is running: left queued or running by a process that died
    (taken when their lease has run out), or released for a retry."""

    def __init__(
        self, jobs: Jobs, poll_s: float = 2.0, *, sweep: Callable[[], int] | None = None, sweep_every_s: float = 3600
    ) -> None:
        self.jobs = jobs
        self.poll_s = poll_s
        # removes transfers past their keeping time (locally; on AWS the bucket's lifecycle rule does)
        self.sweep = sweep
        self.sweep_every_s = sweep_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="o-transfers", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        swept_at = -float("inf")
        while not self._stop.is_set():
            if self.sweep is not None and time.monotonic() - swept_at >= self.sweep_every_s:
                swept_at = time.monotonic()
                self._sweep(self.sweep)
            if _run_logged(self.jobs, None) is None:
                self._stop.wait(self.poll_s)

    @staticmethod
    def _sweep(sweep: Callable[[], int]) -> None:
        try:
            if gone := sweep():
                logger.info("expired transfers removed", extra={"files": gone})
        except Exception:  # the next sweep tries again; jobs go on meanwhile
            logger.exception("removing expired transfers failed")
