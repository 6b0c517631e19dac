"""The original bytes of an agent's folder files, carried in its bundle.

A file's parsed text and chunks travel as rows (``folder_files``, ``file_chunks``); its original bytes
live in the blob store (:mod:`o.memory.files.blobs`), so the bundle carries them as frames of their own,
``{"blob": KEY, "folder_id": FOLDER, "data": BYTES}`` (msgpack ``bin``: no base64), written just before
the ``folder_files`` section. On import each is stored under a new key of the importing organization and
the file row points at it, so the moved file can be processed again (``replace``, a re-run of its
ingestion) as it could at home.

Caps: a file larger than ``MAX_FILE_BYTES`` (it must fit one frame) or past ``MAX_TOTAL_BYTES`` for the
whole bundle travels without its bytes, as do files whose bytes are missing from the source's store;
their copies keep text and chunks (searchable, openable) with an empty blob key, and the import names
them in ``files_without_bytes``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from o.agent.portable.frames import MAX_FRAME_BYTES, BundleError
from o.errors import NotFound
from o.memory.files.blobs import BlobStore
from o.observability import logger
from o.store import bundle as store
from o.store.db import Conn

# one file's bytes travel in one frame (with room for its key)
MAX_FILE_BYTES = MAX_FRAME_BYTES - 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024**3


def frames(conn: Conn, blobs: BlobStore, agent_id: str, total_cap: int = MAX_TOTAL_BYTES) -> Iterator[dict[str, Any]]:
    """A frame for each file of the agent's folders whose bytes fit the caps, in the bundle's order."""
    spent = 0
    for row in store.file_blobs(conn, agent_id):
        size = int(row["file_size"])
        if size > MAX_FILE_BYTES or spent + size > total_cap:
            logger.warning("a file's bytes are left out of a bundle (over its cap)", extra={"key": row["blob_key"]})
            continue
        try:
            data = blobs.get(row["blob_key"])
        except NotFound:
            logger.warning("a file's bytes are missing from the blob store", extra={"key": row["blob_key"]})
            continue
        spent += len(data)
        yield {"blob": row["blob_key"], "folder_id": row["folder_id"], "data": data}


@dataclass
class Received:
    """The bytes an import stored (old key -> new key); removed again if the import fails."""

    blobs: BlobStore | None
    organization_id: str
    keys: dict[str, str] = field(default_factory=dict)

    def put(self, body: dict[str, Any], folder_ids: dict[str, str]) -> None:
        old, folder, data = body.get("blob"), body.get("folder_id"), body.get("data")
        if not isinstance(old, str) or not isinstance(folder, str) or not isinstance(data, bytes):
            raise BundleError("the bundle has a malformed file bytes frame")
        if folder not in folder_ids:
            raise BundleError("the bundle has a file's bytes before (or without) its folder")
        if self.blobs is None:  # a caller with no blob store: the copy goes without bytes
            return
        new = f"{self.organization_id}/{folder_ids[folder]}/{uuid.uuid4()}"
        self.blobs.put(new, data, "application/octet-stream")
        self.keys[old] = new

    def key_for(self, old: str) -> str:
        """The new key of a file's bytes ("" when the bundle did not carry them)."""
        return self.keys.get(old, "")

    def discard(self) -> None:
        """Remove every blob this import stored (the import failed: nothing of it may stay)."""
        if self.blobs is None:
            return
        for key in self.keys.values():
            self.blobs.delete(key)
        self.keys.clear()
