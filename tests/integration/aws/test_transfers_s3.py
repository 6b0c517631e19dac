"""Upload sessions on AWS, under moto: the session's URL is a SigV4 presigned S3 PUT that signs the exact
length, the content type and SSE-S3; the bytes PUT there (never through the API) become a folder file that
the real ingest handler processes from S3; the bytes of a session that were not all sent are refused when
it is completed; a bundle import handed on from invocation to invocation by the real ingest handler."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from fastapi.testclient import TestClient
from moto import mock_aws

from o import runtime
from o.agent import folders, uploads
from o.agent.portable import bundle, frames
from o.aws.blobs import S3BlobStore
from o.config import load_settings
from o.errors import Conflict
from o.runtime import files as runtime_files
from o.store import orgs
from o.store.db import Database
from tests import wiring
from tests.lambdas import Context, aws_credentials, fresh_handler, service_environment

BUCKET = "o-transfers-test"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    aws_credentials(monkeypatch)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        url = boto3.client("sqs").create_queue(QueueName="o-ingest")["QueueUrl"]
        yield {"queue_url": url}


def test_a_folder_file_through_a_presigned_put(
    aws: dict[str, Any], db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_environment(monkeypatch, pg_url, O_FILES_BUCKET=BUCKET, O_FILES_INGEST_QUEUE_URL=aws["queue_url"])
    settings = load_settings()
    engine = runtime.agent_engine(settings, db)
    files = runtime_files.file_services(settings, runtime_files.ingestion(settings, db, engine.embedders))
    transfers = runtime_files.transfer_services(settings, db)
    assert isinstance(transfers.blobs, S3BlobStore) and transfers.worker is None
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
        folder = folders.create(conn, org, {"name": "s3-sessions"})["id"]
    text = b"# Notes\n\nAda likes tea.\n" * 50
    new = uploads.NewUpload("folder_file", len(text), folder_id=folder, file_name="notes.md")
    created = uploads.create(db, transfers, org, new)
    assert created.token is None and created.target is not None  # S3 signs the URL: no route of O's own
    query = parse_qs(urlsplit(created.target.url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert set(query["X-Amz-SignedHeaders"][0].split(";")) >= {"content-length", "content-type", "host",
                                                                "x-amz-server-side-encryption"}  # fmt: skip
    assert int(query["X-Amz-Expires"][0]) == settings.files.transfer_expires_s
    assert created.target.headers["Content-Length"] == str(len(text))
    # completing before the bytes are there says what to do
    with pytest.raises(Conflict, match="PUT"):
        uploads.complete(db, transfers, files, org, created.row["id"])
    put = requests.put(created.target.url, data=text, headers=created.target.headers, timeout=30)
    assert put.status_code == 200, put.text
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=created.row["blob_key"])
    assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == len(text)
    done = uploads.complete(db, transfers, files, org, created.row["id"])
    assert done["status"] == "completed"
    file_id = done["result"]["file_id"]
    # announced on the ingest queue; the real handler processes it from S3
    got = boto3.client("sqs").receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"file_id": file_id}]
    with fresh_handler("functions.ingest.handler") as ingest:
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in got]
        assert ingest.handler({"Records": records}, Context("o-ingest")) == {"batchItemFailures": []}
    with db.read() as conn:
        row = conn.execute("SELECT * FROM folder_files WHERE id = %s", (file_id,)).fetchone()
    assert row["processing_status"] == "completed" and row["blob_key"] == created.row["blob_key"]
    assert row["file_size"] == len(text)
    # a session whose bytes are not what it declared is refused when completed
    short = uploads.create(db, transfers, org, uploads.NewUpload("bundle", 100))
    assert short.target is not None
    boto3.client("s3").put_object(Bucket=BUCKET, Key=short.row["blob_key"], Body=b"x" * 99)
    with pytest.raises(Conflict, match="99 bytes"):
        uploads.complete(db, transfers, files, org, short.row["id"])


def test_a_bundle_import_hands_itself_on_from_invocation_to_invocation(
    aws: dict[str, Any], db: Database, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invocations with no time left past one chunk: each commits one and re-queues the job with a new
    message (its own record done), and the last one's agent is the whole agent; S3 keeps no bytes."""
    service_environment(monkeypatch, pg_url, O_FILES_BUCKET=BUCKET, O_FILES_INGEST_QUEUE_URL=aws["queue_url"])
    settings = load_settings()
    engine = runtime.agent_engine(settings, db)
    files = runtime_files.file_services(settings, runtime_files.ingestion(settings, db, engine.embedders))
    transfers = runtime_files.transfer_services(settings, db)
    keys = {}
    for side in ("source", "target"):
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]
            keys[side] = (org, orgs.create_api_key(conn, org)[1])
    with TestClient(wiring.app(db), headers={"Authorization": f"Bearer {keys['source'][1]}"}) as source:
        agent = source.post("/v1/agents/", json={"name": "long"}).json()["id"]
        for i in range(6):
            source.post(f"/v1/agents/{agent}/archival-memory", json={"text": f"note {i}"}).raise_for_status()
        texts = sorted(p["text"] for p in source.get(f"/v1/agents/{agent}/archival-memory").json())
    data = b"".join(bundle.export(db, keys["source"][0], agent, batch=2))
    org = keys["target"][0]
    created = uploads.create(db, transfers, org, uploads.NewUpload("bundle", len(data), name="handed-on"))
    boto3.client("s3").put_object(Bucket=BUCKET, Key=created.row["blob_key"], Body=data)
    assert uploads.complete(db, transfers, files, org, created.row["id"])["status"] == "queued"
    sqs = boto3.client("sqs")
    invocations = 0
    with fresh_handler("functions.ingest.handler") as ingest:
        while got := sqs.receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages"):
            assert [json.loads(m["Body"]) for m in got] == [{"upload_id": created.row["id"]}]
            records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in got]
            context = Context("o-ingest", remaining_ms=0)
            assert ingest.handler({"Records": records}, context) == {"batchItemFailures": []}
            for m in got:  # what the event source mapping does with a record the function finished
                sqs.delete_message(QueueUrl=aws["queue_url"], ReceiptHandle=m["ReceiptHandle"])
            invocations += 1
            assert invocations < 100
    done = uploads.get(db, org, created.row["id"])
    assert done["status"] == "completed", done
    # one frame an invocation, and one that reads the end
    assert invocations == len(list(frames.read(io.BytesIO(data)))) + 1
    with TestClient(wiring.app(db), headers={"Authorization": f"Bearer {keys['target'][1]}"}) as target:
        moved = target.get(f"/v1/agents/{done['result']['agent_id']}").json()
        assert moved["name"] == "handed-on"
        assert sorted(p["text"] for p in target.get(f"/v1/agents/{moved['id']}/archival-memory").json()) == texts
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=created.row["blob_key"])
