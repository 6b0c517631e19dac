"""The blob-store port: where the original bytes of uploaded files are kept, before anything else
happens to them (so a failed parse loses nothing and ``replace`` can process a file again).

Locally the data dir (:class:`LocalBlobStore`); on AWS an S3 bucket (``o.aws.blobs``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from o.errors import NotFound


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True)
class Transfer:
    """Where a client sends (or fetches) an upload session's bytes itself, past the API: a presigned S3
    URL, with the headers the signature covers."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class StagingStore(BlobStore, Protocol):
    """A blob store that also takes and serves large payloads directly (upload sessions, exports).

    ``upload_target`` / ``download_target`` answer None when the store cannot sign URLs (the data dir):
    then O's own routes stream the bytes (:meth:`LocalBlobStore.writer` / :meth:`open`)."""

    def upload_target(self, key: str, size: int, content_type: str, expires_s: int) -> Transfer | None: ...

    def download_target(self, key: str, filename: str, expires_s: int) -> Transfer | None: ...

    def size(self, key: str) -> int | None: ...

    def open(self, key: str) -> BinaryIO: ...

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None: ...

    def writer(self, key: str) -> AbstractContextManager[BinaryIO]: ...


class LocalBlobStore:
    """Blobs as files under ``root``, written atomically (temp file + rename), owner-only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a blob key: {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        del content_type  # the file row records it
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the original bytes of this file are missing from the blob store ({key})") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    # -- large payloads (upload sessions, exports): streamed through O's own routes ----------------------

    def upload_target(self, key: str, size: int, content_type: str, expires_s: int) -> Transfer | None:
        del key, size, content_type, expires_s
        return None  # O's PUT route writes it (:meth:`writer`)

    def download_target(self, key: str, filename: str, expires_s: int) -> Transfer | None:
        del key, filename, expires_s
        return None  # O's GET route streams it (:meth:`open`)

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to stream a blob into; it appears under ``key`` (atomically) only if the block ends
        without an error."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None:
        del content_type
        with self.writer(key) as out:
            while piece := source.read(1024 * 1024):
                out.write(piece)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def expire(self, prefix: str, older_than_s: float) -> int:
        """Remove the blobs under ``prefix`` (and writers' leftovers) last written more than
        ``older_than_s`` ago, as the bucket's lifecycle rule does on AWS; how many went."""
        cutoff = time.time() - older_than_s
        gone = 0
        for path in self._path(prefix.rstrip("/")).rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    gone += 1
            except FileNotFoundError:  # removed meanwhile (a job's own cleanup)
                continue
        return gone

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound(f"the bytes of this upload are missing from the blob store ({key})") from None
