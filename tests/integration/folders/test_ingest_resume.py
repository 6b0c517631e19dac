"""Ingestion survives a crash: a worker process killed mid-file (after its first batch of chunks is
stored) leaves its lease to run out; the next worker resumes from the stored chunks, embeds only the
rest, and the file ends completed with every chunk exactly once."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from o.agent import folders
from o.memory.embeddings import Embedder, EmbeddingConfig
from o.memory.files.blobs import LocalBlobStore
from o.memory.files.ingest import Ingestion, process_next
from o.store import files as file_store
from o.store import orgs
from o.store.db import Database

# What the crashing worker runs: the real process_next, with an embedder that kills the process
# (no cleanup, no lease released) on its second batch.
CRASHING_WORKER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from o.memory.files.blobs import LocalBlobStore
    from o.memory.files.ingest import Ingestion, process_next
    from o.store.db import Database

    class Dies:
        calls = 0
        def embed(self, texts):
            Dies.calls += 1
            if Dies.calls == 2:
                os._exit(9)
            return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)

    class Source:
        def for_config(self, config):
            return Dies()
        def check(self, config):
            pass

    db = Database(sys.argv[1], min_size=1, max_size=2).open()
    process_next(Ingestion(db, LocalBlobStore(__import__("pathlib").Path(sys.argv[2])), Source(), lease_s=1.0))
    """
)


class Counting:
    """A deterministic embedder that records what it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += texts
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


class Source:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def for_config(self, config: EmbeddingConfig) -> Embedder:
        return self.embedder

    def check(self, config: EmbeddingConfig) -> None:
        pass


def test_a_killed_worker_is_resumed_without_duplicate_chunks(db: Database, pg_url: str) -> None:
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-resume-")))
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        # batch_size 4: the 40 sections below make 10 batches
        config = {**EmbeddingConfig.default().model_dump(exclude_none=True), "batch_size": 4}
        folder = folders.create(conn, org, {"name": "resume", "embedding_config": config})
    text = "\n".join(f"# Section {i}\n\nParagraph {i} of the long document." for i in range(40))
    row, _ = folders.upload(db, blobs, org, folder["id"], folders.Upload("long.md", None, text.encode()))

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, pg_url, str(blobs.root)], capture_output=True, timeout=60
    )
    assert crashed.returncode == 9, crashed.stderr.decode()
    with db.read() as conn:
        mid = conn.execute("SELECT * FROM folder_files WHERE id = %s", (row["id"],)).fetchone()
    assert mid["processing_status"] == "embedding" and mid["chunks_embedded"] == 4 and mid["total_chunks"] == 40

    counting = Counting()
    ing = Ingestion(db, blobs, Source(counting), lease_s=1.0)
    assert process_next(ing) is None  # the dead worker's lease still holds
    time.sleep(1.1)
    assert process_next(ing) == row["id"]
    with db.read() as conn:
        done = conn.execute("SELECT * FROM folder_files WHERE id = %s", (row["id"],)).fetchone()
        seqs = [r["seq"] for r in conn.execute("SELECT seq FROM file_chunks WHERE file_id = %s", (row["id"],))]
    assert done["processing_status"] == "completed" and done["attempts"] == 2
    assert sorted(seqs) == list(range(40))  # each chunk once
    assert len(counting.texts) == 36  # only what the crashed worker had not stored


class ReplacesMidway:
    """An embedder during whose first call the file is replaced by a client (a concurrent upload)."""

    def __init__(self, replace: Callable[[], None]) -> None:
        self.replace = replace
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 1:
            self.replace()
        return np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)


def test_a_file_replaced_mid_ingestion_keeps_only_the_new_content(db: Database) -> None:
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-replace-")))
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        folder = folders.create(conn, org, {"name": "replaced"})["id"]
    old = "\n".join(f"# Old {i}\n\nold text {i}" for i in range(5)).encode()
    row, _ = folders.upload(db, blobs, org, folder, folders.Upload("doc.md", None, old))

    def replace() -> None:
        new = folders.Upload("doc.md", None, b"# New\n\nnew text only")
        folders.upload(db, blobs, org, folder, new, duplicate_handling="replace")

    ing = Ingestion(db, blobs, Source(ReplacesMidway(replace)))
    assert process_next(ing) == row["id"]  # superseded: writes nothing more
    with db.read() as conn:
        mid = conn.execute("SELECT processing_status, chunks_embedded FROM folder_files WHERE id = %s", (row["id"],))
        assert mid.fetchone() == {"processing_status": "pending", "chunks_embedded": 0}
    assert process_next(ing) == row["id"]
    with db.read() as conn:
        texts = [r["text"] for r in conn.execute("SELECT text FROM file_chunks WHERE file_id = %s", (row["id"],))]
    assert texts == ["# New\n\nnew text only"]


def test_a_replacing_upload_waits_for_a_workers_batch_in_the_same_folder(db: Database) -> None:
    """The lock order that keeps a replacing upload and a worker's chunk batch from deadlocking: the
    worker's transaction takes the folder before anything else, so the upload (which locks the folder
    for update, then deletes chunks and so updates the folder's statistics) waits for the batch,
    which meanwhile updates those statistics and inserts new terms."""
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-lock-order-")))
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        folder = folders.create(conn, org, {"name": "lock-order"})["id"]
    done, _ = folders.upload(db, blobs, org, folder, folders.Upload("done.md", None, b"# Done\n\nalpha beta"))
    ing = Ingestion(db, blobs, Source(Counting()))
    assert process_next(ing, done["id"]) == done["id"]
    busy, _ = folders.upload(db, blobs, org, folder, folders.Upload("busy.md", None, b"# Busy\n\ngamma"))
    with db.transaction() as conn:
        claimed = file_store.claim(conn, 60, busy["id"])
    assert claimed is not None

    replaced = threading.Event()

    def replace() -> None:
        new = folders.Upload("done.md", None, b"# Again\n\ndelta epsilon")
        folders.upload(db, blobs, org, folder, new, duplicate_handling="replace")
        replaced.set()

    with db.transaction() as conn:
        assert file_store.holds(conn, busy["id"], claimed["claim_id"])
        uploader = threading.Thread(target=replace)
        uploader.start()
        assert not replaced.wait(0.5)  # the upload waits for the worker's transaction
        vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
        chunk = file_store.NewChunk(0, "zeta eta theta", 1, 1, None, "", vector)
        file_store.insert_chunks(conn, claimed, [chunk], model="local", dim=384)
    uploader.join(timeout=30)
    assert replaced.is_set()
    with db.read() as conn:
        rows = conn.execute("SELECT id, processing_status FROM folder_files WHERE folder_id = %s", (folder,))
        assert {r["id"]: r["processing_status"] for r in rows} == {done["id"]: "pending", busy["id"]: "parsing"}
