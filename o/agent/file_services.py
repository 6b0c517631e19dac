"""What the folder, upload and export routes need beside the database, chosen by the composition root:
where the bytes go, the limits, and who is told of new work. Apart from the folders' and transfers'
domain (:mod:`o.agent.folders`, :mod:`o.agent.uploads`), so the API's services are built without
importing it (nor the base tools and the bundle format behind it): a GET of an agent never needs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from o.memory.files.blobs import BlobStore, StagingStore
    from o.memory.files.ingest import Worker

# where uploaded bundles and exports are kept: removed after TRANSFER_KEPT_DAYS, on AWS by a lifecycle rule
# (infra/files.py), locally by `o serve`'s transfer worker; a folder file's bytes are the file's, kept under
# its organization and folder
TRANSFERS = "transfers/"


@dataclass(frozen=True)
class FileLimits:
    max_upload_bytes: int = 25 * 1024 * 1024
    org_quota_bytes: int = 1024**3


def _no_file(file_id: str) -> None:
    del file_id


@dataclass(frozen=True)
class FileServices:
    """What the folder routes need beside the database, chosen by the composition root."""

    blobs: BlobStore
    limits: FileLimits = FileLimits()
    # called after an upload commits (the local worker wakes; on AWS the S3 event starts ingestion)
    on_upload: Callable[[str], None] = _no_file
    # the local ingestion worker, which `o serve` starts in one process (None on AWS)
    worker: Worker | None = None


@dataclass(frozen=True)
class TransferLimits:
    max_bundle_bytes: int = 4 * 1024**3
    max_file_bytes: int = 512 * 1024**2
    expires_s: int = 3600


def _no_upload(upload_id: str) -> None:
    del upload_id


@dataclass(frozen=True)
class TransferServices:
    """What upload sessions and exports need beside the database, chosen by the composition root."""

    blobs: StagingStore
    limits: TransferLimits = TransferLimits()
    # called after a job is queued: locally a thread runs it; on AWS a message on the ingest queue
    announce: Callable[[str], None] = _no_upload
    # stops the local job poller with `o serve` (None: nothing to stop)
    worker: Any = field(default=None)
