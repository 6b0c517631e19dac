"""Ingestion as durable work: a file row is its own job (``processing_status`` pending → parsing →
embedding → completed | error).

:func:`process_next` claims one file with a lease, parses its original bytes from the blob store,
chunks them and embeds the chunks that are not stored yet, a batch per transaction (each batch also
renews the lease). A worker that dies mid-file (a killed process, a Lambda timeout) leaves its lease
to run out; the next claim resumes from the chunks already stored, so nothing is embedded twice and
no chunk is duplicated. A file that cannot be read goes to ``error`` at once with the reason; a
transient failure (the embedding endpoint down) is retried up to ``max_attempts`` times.

Locally :class:`Worker` runs in `o serve`; on AWS the ingest function calls :func:`process_next`
for the file an S3 upload event (or a retry) names.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from o.errors import OError
from o.memory.embedding_call import embed_texts
from o.memory.embeddings import EmbedderSource, EmbeddingConfig
from o.memory.files.blobs import BlobStore
from o.memory.files.chunking import Chunk, chunk, max_chars
from o.memory.files.parsers import ParseError, parse
from o.observability import logger
from o.store import files as file_store
from o.store import folders as folder_store
from o.store.db import Conn, Database

# the hold :func:`give_up` takes on a file while it ends it (a crash between the two leaves it this long)
_GIVING_UP_LEASE_S = 300.0


@dataclass(frozen=True)
class Ingestion:
    db: Database
    blobs: BlobStore
    embedders: EmbedderSource
    lease_s: float = 300.0
    max_attempts: int = 3


def process_next(ing: Ingestion, file_id: str | None = None) -> str | None:
    """Process one unfinished file (``file_id`` if given and claimable); its id, or None if none was free."""
    with ing.db.transaction() as conn:
        file = file_store.claim(conn, ing.lease_s, file_id)
    if file is None:
        return None
    try:
        _process(ing, file)
    except Superseded:
        logger.info(
            "file ingestion superseded (replaced, or taken after the lease ran out)", extra={"file_id": file["id"]}
        )
    except ParseError as exc:
        _fail(ing.db, file, str(exc))
    except Exception as exc:
        reason = str(exc) if isinstance(exc, OError) else f"{type(exc).__name__}: {exc}"
        if file["attempts"] >= ing.max_attempts:
            _fail(ing.db, file, f"processing failed {file['attempts']} times; last error: {reason}")
        else:
            logger.warning("file ingestion failed; it will be retried", extra={"file_id": file["id"], "error": reason})
            with ing.db.transaction() as conn:
                if file_store.holds(conn, file["id"], file["claim_id"]):
                    file_store.release(conn, file["id"])
    return str(file["id"])


def unfinished(ing: Ingestion, file_id: str) -> bool:
    """Whether the file still waits for processing (pending, parsing or embedding)."""
    with ing.db.read() as conn:
        return file_store.status(conn, file_id) in file_store.UNFINISHED


def give_up(db: Database, file_id: str, deliveries: int, quiet_s: float) -> bool:
    """End a file its queue gave up on (``deliveries`` runs, none of which finished it: killed, timed
    out, or failing before they could say so) in error, as an unreadable file ends (none of its chunks
    kept). Only a file still unfinished that no worker is at: its lease run out, nothing written for
    ``quiet_s``. Whether the file is done with (ended now, or finished by itself, or gone); False while
    a worker may be at it: ask again later."""
    with db.transaction() as conn:
        file = file_store.claim(conn, _GIVING_UP_LEASE_S, file_id, quiet_s=quiet_s)
        if file is None:
            return file_store.status(conn, file_id) not in file_store.UNFINISHED
    _fail(db, file, f"ingestion given up after {deliveries} deliveries to the ingest function, none of which "
                    "finished it (each run was stopped or failed); upload the file again to retry")  # fmt: skip
    return True


def _fail(db: Database, file: dict[str, Any], message: str) -> None:
    logger.info("file ingestion failed", extra={"file_id": file["id"], "error": message})
    with db.transaction() as conn:
        if file_store.holds(conn, file["id"], file["claim_id"]):
            file_store.fail(conn, file["id"], message)


def _process(ing: Ingestion, file: dict[str, Any]) -> None:
    with ing.db.read() as conn:
        folder = folder_store.get(conn, file["organization_id"], file["folder_id"])
    if folder is None:  # deleted meanwhile: its files went with it
        return
    config = EmbeddingConfig.from_agent(folder["embedding_config"])
    doc = parse(file["file_name"], ing.blobs.get(file["blob_key"]))
    chunks = chunk(doc, max_chars(config.embedding_chunk_size))
    with ing.db.transaction() as conn:
        _hold(conn, file)
        file_store.parsed(conn, file["id"], doc.text, len(chunks))
        done = file_store.existing_seqs(conn, file["id"])
    embedder = ing.embedders.for_config(config)
    todo = [c for c in chunks if c.seq not in done]
    size = config.batch_size or 32
    for start in range(0, len(todo), size):
        batch = todo[start : start + size]
        vectors = embed_texts(embedder, [_embedded_text(c) for c in batch], config)
        rows = [
            file_store.NewChunk(c.seq, c.text, c.start_line, c.end_line, c.page, c.heading, v)
            for c, v in zip(batch, vectors, strict=True)
        ]
        with ing.db.transaction() as conn:
            _hold(conn, file)
            file_store.insert_chunks(conn, file, rows, model=config.embedding_model, dim=config.embedding_dim)
            file_store.extend(conn, file["id"], ing.lease_s)
    with ing.db.transaction() as conn:
        _hold(conn, file)
        file_store.finish(conn, file["id"])


class Superseded(Exception):
    """The file's claim is no longer this worker's: it must write nothing more."""


def _hold(conn: Conn, file: dict[str, Any]) -> None:
    if not file_store.holds(conn, file["id"], file["claim_id"]):
        raise Superseded(file["id"])


def _embedded_text(c: Chunk) -> str:
    # the heading path tells the model what a short chunk is about
    return f"{c.heading}\n{c.text}" if c.heading else c.text


class Worker:
    """The local ingestion worker of `o serve`: polls for unfinished files (any process may have
    taken the upload) and is woken at once by an upload in this process."""

    def __init__(self, ing: Ingestion, poll_s: float = 2.0) -> None:
        self.ing = ing
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="o-ingest", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def wake(self, file_id: str | None = None) -> None:
        """Look for work now (``file_id``, just uploaded, is among it)."""
        del file_id
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = process_next(self.ing) is not None
            except Exception:
                logger.exception("file ingestion worker failed")
                busy = False
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()
            else:
                time.sleep(0)
