"""The blob-store port on AWS: uploaded files' original bytes in a private S3 bucket (encrypted at
rest by the bucket's default encryption, public access blocked: infra/files.py), and the ingestion
queue an upload is announced on (SQS; the ingest function consumes it)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

from o.errors import NotFound


class S3BlobStore:
    def __init__(self, bucket: str, *, client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        # made at the first file operation, not at start-up (a boto3 client costs tens of ms to make)
        if self._client is None:
            self._client = boto3.client("s3")
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
