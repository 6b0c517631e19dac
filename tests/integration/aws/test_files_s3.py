"""Folders' files on AWS, under moto: the API stores an upload's bytes in the S3 bucket and announces
it on the ingest queue; the real ingest handler, fed the queue's messages, processes the file from
S3; an unfinished file's message is handed back (a batch item failure) so SQS delivers it again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from o import runtime
from o.agent import folders
from o.aws.blobs import S3BlobStore
from o.config import load_settings
from o.errors import NotFound
from o.runtime import files as runtime_files
from o.store import orgs
from o.store.db import Database
from tests.lambdas import Context, aws_credentials, fresh_handler, service_environment

BUCKET = "o-files-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    aws_credentials(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="o-ingest")["QueueUrl"]
        yield {"s3": s3, "sqs": sqs, "queue_url": url}


def test_blob_store_round_trip(aws: dict[str, Any]) -> None:
    blobs = S3BlobStore(BUCKET, client=aws["s3"])
    blobs.put("org/folder/a", b"bytes", "text/plain")
    assert blobs.get("org/folder/a") == b"bytes"
    assert aws["s3"].head_object(Bucket=BUCKET, Key="org/folder/a")["ContentType"] == "text/plain"
    blobs.delete("org/folder/a")
    blobs.delete("org/folder/a")  # twice is harmless
    with pytest.raises(NotFound):
        blobs.get("org/folder/a")


def _messages(aws: dict[str, Any]) -> list[dict[str, Any]]:
    got = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
    return [{"messageId": m["MessageId"], "body": m["Body"]} for m in got.get("Messages", [])]


def test_upload_to_s3_then_the_ingest_handler_processes_it(
    aws: dict[str, Any], db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_environment(monkeypatch, pg_url, O_FILES_BUCKET=BUCKET, O_FILES_INGEST_QUEUE_URL=aws["queue_url"])
    settings = load_settings()
    files = runtime_files.file_services(
        settings, runtime_files.ingestion(settings, db, runtime.agent_engine(settings, db).embedders)
    )
    assert isinstance(files.blobs, S3BlobStore) and files.worker is None
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        folder = folders.create(conn, org, {"name": "s3"})["id"]
    good, _ = folders.upload(
        db, files.blobs, org, folder, folders.Upload("notes.md", None, b"# Notes\n\nAda likes tea.")
    )
    bad, _ = folders.upload(db, files.blobs, org, folder, folders.Upload("bad.json", None, b"{not json"))
    for row in (good, bad):
        files.on_upload(row["id"])
        assert aws["s3"].get_object(Bucket=BUCKET, Key=row["blob_key"])["Body"].read()
    records = _messages(aws)
    assert sorted(json.loads(r["body"])["file_id"] for r in records) == sorted([good["id"], bad["id"]])

    with fresh_handler("functions.ingest.handler") as ingest:
        # a file another invocation holds (its lease not run out): handed back for a later delivery
        with db.transaction() as conn:
            conn.execute(
                "UPDATE folder_files SET claimed_until = now() + interval '1 hour' WHERE id = %s", (good["id"],)
            )
        held = ingest.handler({"Records": records}, Context("o-ingest"))
        assert [f["itemIdentifier"] for f in held["batchItemFailures"]] == [
            r["messageId"] for r in records if good["id"] in r["body"]
        ]
        with db.transaction() as conn:
            conn.execute("UPDATE folder_files SET claimed_until = NULL WHERE id = %s", (good["id"],))
        assert ingest.handler({"Records": records}, Context("o-ingest")) == {"batchItemFailures": []}
    with db.read() as conn:
        rows = {
            r["id"]: r
            for r in conn.execute("SELECT * FROM folder_files WHERE id = ANY(%s)", ([good["id"], bad["id"]],))
        }
    assert rows[good["id"]]["processing_status"] == "completed" and rows[good["id"]]["chunks_embedded"] >= 1
    assert rows[bad["id"]]["processing_status"] == "error" and "JSON" in rows[bad["id"]]["error_message"]
    # the folder goes with its files' bytes
    folders.delete(db, files.blobs, org, folder)
    assert aws["s3"].list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
