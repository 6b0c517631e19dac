"""The files' and transfers' adapters of the composition root: where bytes go (the data dir or S3),
and who runs ingestion and transfer jobs (a thread of `o serve`, or the ingest function on AWS)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from o.agent.file_services import TRANSFERS, FileLimits, FileServices, TransferLimits, TransferServices
from o.config import Settings
from o.config.tools import TRANSFER_KEPT_DAYS
from o.memory.embeddings import EmbedderSource
from o.memory.files.blobs import LocalBlobStore, StagingStore
from o.memory.files.ingest import Ingestion
from o.memory.files.ingest import Worker as IngestWorker
from o.store.db import Database

if TYPE_CHECKING:  # the transfer jobs (the bundle format) are imported where a job is run: not by the API on AWS
    from o.agent.transfer_jobs import Jobs


def blob_store(settings: Settings) -> StagingStore:
    """Where uploaded files' original bytes go: the S3 bucket (AWS), else <data dir>/files."""
    if settings.files.bucket:
        from o.aws.blobs import S3BlobStore

        return S3BlobStore(settings.files.bucket)
    return LocalBlobStore(settings.data_dir / "files")


def ingestion(settings: Settings, db: Database, embedders: EmbedderSource) -> Ingestion:
    return Ingestion(db, blob_store(settings), embedders, settings.files.lease_seconds, settings.files.max_attempts)


def file_services(settings: Settings, ing: Ingestion) -> FileServices:
    """Locally an ingestion worker (started by `o serve` in one process) that an upload wakes; on AWS
    an upload is announced on the ingest queue, which the ingest function consumes."""
    limits = FileLimits(settings.files.max_upload_bytes, settings.files.org_quota_bytes)
    if settings.files.ingest_queue_url:
        from o.aws.blobs import IngestQueue

        return FileServices(ing.blobs, limits, IngestQueue(settings.files.ingest_queue_url).send)
    worker = IngestWorker(ing, settings.files.poll_seconds)
    return FileServices(ing.blobs, limits, worker.wake, worker)


def transfer_jobs(settings: Settings, db: Database) -> Jobs:
    """On AWS a job out of time (an invocation lasts 15 minutes) is handed on by a new message on the
    ingest queue; locally a job has no time limit."""
    from o.agent.transfer_jobs import Jobs

    files = settings.files
    requeue = None
    if files.ingest_queue_url:
        from o.aws.blobs import IngestQueue

        requeue = IngestQueue(files.ingest_queue_url).send_upload
    return Jobs(db, blob_store(settings), files.lease_seconds, files.max_attempts, requeue=requeue)


def transfer_services(settings: Settings, db: Database) -> TransferServices:
    """Upload sessions and exports: their bytes in the blob store (presigned S3 URLs on AWS); their jobs
    announced on the ingest queue (AWS, the ingest function runs them) or run on a thread of this
    process, with a poller in `o serve` for jobs a dead process left."""
    files = settings.files
    limits = TransferLimits(settings.max_bundle_bytes, files.max_session_bytes, files.transfer_expires_s)
    if files.ingest_queue_url:
        from o.aws.blobs import IngestQueue

        return TransferServices(blob_store(settings), limits, IngestQueue(files.ingest_queue_url).send_upload)
    from o.agent.transfer_jobs import Worker, launch

    jobs = transfer_jobs(settings, db)
    blobs = jobs.blobs
    sweep = partial(blobs.expire, TRANSFERS, TRANSFER_KEPT_DAYS * 86400) if isinstance(blobs, LocalBlobStore) else None
    return TransferServices(blobs, limits, launch(jobs), Worker(jobs, files.poll_seconds, sweep=sweep))
