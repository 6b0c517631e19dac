"""A file the ingest queue gave up on (its message dead-lettered, o/memory/files/ingest.py ``give_up``):
ended in error with the reason and what to do, none of its chunks kept, as an unreadable file ends; but
only once no worker may be at it (its lease run out, nothing written lately), and never a file that
finished meanwhile. Asked again, nothing changes."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from o.agent import folders
from o.memory.embeddings import EmbeddingConfig
from o.memory.files.blobs import LocalBlobStore
from o.memory.files.ingest import Ingestion, give_up, process_next
from o.store import orgs
from o.store.db import Database
from tests.integration.folders.test_ingest_resume import Counting, Source


class FailsSecond:
    """An embedder whose second batch fails (the embedding endpoint down): the run gives the file back."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 2:
            raise ConnectionError("embedding endpoint down")
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


def _file(db: Database, file_id: str) -> dict[str, Any]:
    with db.read() as conn:
        row = conn.execute(
            "SELECT processing_status, error_message, chunks_embedded, attempts,"
            " (SELECT count(*) FROM file_chunks WHERE file_id = %s) AS chunks FROM folder_files WHERE id = %s",
            (file_id, file_id),
        ).fetchone()
    assert row is not None
    return dict(row)


def _age(db: Database, file_id: str, *, lease_s: float, written_s: float) -> None:
    """The file as time would leave it: its lease ending ``lease_s`` from now, last written ``written_s`` ago."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE folder_files SET claimed_until = now() + make_interval(secs => %s),"
            " updated_at = now() - make_interval(secs => %s) WHERE id = %s",
            (lease_s, written_s, file_id),
        )


def _folder(db: Database) -> tuple[LocalBlobStore, str, str]:
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-given-up-")))
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        config = {**EmbeddingConfig.default().model_dump(exclude_none=True), "batch_size": 4}
        folder = folders.create(conn, org, {"name": "given-up", "embedding_config": config})["id"]
    return blobs, org, folder


def test_a_file_given_up_on_ends_in_error_without_its_chunks(db: Database) -> None:
    blobs, org, folder = _folder(db)
    text = "\n".join(f"# Section {i}\n\nParagraph {i}." for i in range(12))
    row, _ = folders.upload(db, blobs, org, folder, folders.Upload("long.md", None, text.encode()))
    assert process_next(Ingestion(db, blobs, Source(FailsSecond())), row["id"]) == row["id"]
    mid = _file(db, row["id"])
    assert (mid["processing_status"], mid["chunks"]) == ("embedding", 4)  # a batch stored, then given back

    _age(db, row["id"], lease_s=60, written_s=3600)  # a run holds it (or a killed one's lease still runs)
    assert give_up(db, row["id"], 5, quiet_s=120) is False
    _age(db, row["id"], lease_s=-1, written_s=30)  # written lately: a run may be about to take it
    assert give_up(db, row["id"], 5, quiet_s=120) is False
    assert _file(db, row["id"]) == mid  # untouched: not even claimed

    _age(db, row["id"], lease_s=-1, written_s=600)
    assert give_up(db, row["id"], 5, quiet_s=120) is True
    ended = _file(db, row["id"])
    assert (ended["processing_status"], ended["chunks"], ended["chunks_embedded"]) == ("error", 0, 0)
    assert ended["error_message"].startswith("ingestion given up after 5 deliveries to the ingest function")
    assert "upload the file again" in ended["error_message"]
    # a duplicate dead letter: done with, nothing changes
    assert give_up(db, row["id"], 5, quiet_s=120) is True
    assert _file(db, row["id"]) == ended
    # what a client reads: the file's status has ended, with the reason
    with db.read() as conn:
        read = folders.require_file(conn, org, folder, row["id"])
    assert (read["processing_status"], read["error_message"]) == ("error", ended["error_message"])


def test_a_file_that_finished_or_is_gone_is_left_alone(db: Database) -> None:
    blobs, org, folder = _folder(db)
    row, _ = folders.upload(db, blobs, org, folder, folders.Upload("done.md", None, b"# Done\n\nalpha beta"))
    assert process_next(Ingestion(db, blobs, Source(Counting())), row["id"]) == row["id"]
    done = _file(db, row["id"])
    assert done["processing_status"] == "completed" and done["chunks"] == 1
    _age(db, row["id"], lease_s=-1, written_s=3600)
    assert give_up(db, row["id"], 5, quiet_s=0) is True
    assert _file(db, row["id"]) == done
    assert give_up(db, f"file-{uuid.uuid4()}", 5, quiet_s=0) is True  # deleted meanwhile: nothing to end
