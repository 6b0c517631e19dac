"""The blob-store port on AWS: uploaded files' original bytes in a private S3 bucket (encrypted at
rest by the bucket's default encryption, public access blocked: infra/files.py), and the ingestion
queue an upload is announced on (SQS; the ingest function consumes it)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from o.errors import NotFound
from o.memory.files.blobs import Transfer

# one part at a time, on the calling thread: a Lambda's memory holds one 8 MB part, not ten
_ONE_THREAD = TransferConfig(use_threads=False)
# presigned URLs signed with SigV4 cover the headers the uploader must send (length, type, encryption)
_SIGV4 = Config(signature_version="s3v4")


class S3BlobStore:
    def __init__(self, bucket: str, *, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        # made at the first file operation, not at start-up (a boto3 client costs tens of ms to make)
        if self._client is None:
            self._client = boto3.client("s3", config=_SIGV4)
        return self._client

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"the original bytes of this file are missing from the blob store ({key})") from None
            raise
        body: bytes = response["Body"].read()
        return body

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success: deleting twice is harmless
        self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- large payloads: presigned URLs, so the bytes never pass through API Gateway or Lambda ---------

    def upload_target(self, key: str, size: int, content_type: str, expires_s: int) -> Transfer | None:
        """A presigned PUT of exactly ``size`` bytes (the signed Content-Length refuses any other),
        encrypted at rest (SSE-S3), for ``expires_s``."""
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": size,
                  "ServerSideEncryption": "AES256"}  # fmt: skip
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)
        headers = {"Content-Type": content_type, "Content-Length": str(size), "x-amz-server-side-encryption": "AES256"}
        return Transfer(str(url), headers)

    def download_target(self, key: str, filename: str, expires_s: int) -> Transfer | None:
        params = {"Bucket": self.bucket, "Key": key,
                  "ResponseContentDisposition": f'attachment; filename="{filename}"'}  # fmt: skip
        return Transfer(str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)))

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def open(self, key: str) -> BinaryIO:
        """The object's bytes as a stream (read as they arrive, never whole in memory)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"the bytes of this upload are missing from the blob store ({key})") from None
            raise
        body: BinaryIO = response["Body"]
        return body

    def put_file(self, key: str, source: BinaryIO, content_type: str) -> None:
        # a multipart upload past 8 MB: a large export never sits whole in memory
        self.client.upload_fileobj(
            source,
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
            Config=_ONE_THREAD,
        )

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Bytes streamed through O itself (its own upload route): spooled, then stored on success."""
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            self.put_file(key, spool, "application/octet-stream")  # type: ignore[arg-type]


class IngestQueue:
    """Announces an uploaded file to the ingest function. A message that the function fails on (or
    that outlives a timed-out invocation) comes back after the queue's visibility timeout: the retry
    that makes ingestion survive a Lambda timeout."""

    def __init__(self, queue_url: str, *, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def send(self, file_id: str) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"file_id": file_id}))

    def send_upload(self, upload_id: str) -> None:
        """Announce an upload session's job (a bundle import, an export) to the same function."""
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"upload_id": upload_id}))


def announced(body: str) -> tuple[str, str] | None:
    """What an ingest queue message (or its dead letter) names: ``("upload_id", id)`` for a transfer job,
    ``("file_id", id)`` for a file; None for a body that names neither."""
    try:
        named = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(named, dict):
        return None
    for key in ("upload_id", "file_id"):  # the job first, as the ingest function has always read it
        if key in named:
            return key, str(named[key])
    return None
