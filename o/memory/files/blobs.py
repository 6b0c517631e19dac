"""The blob-store port: where the original bytes of uploaded files are kept, before anything else
happens to them (so a failed parse loses nothing and ``replace`` can process a file again).

Locally the data dir (:class:`LocalBlobStore`); on AWS an S3 bucket (``o.aws.blobs``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from o.errors import NotFound


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


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
