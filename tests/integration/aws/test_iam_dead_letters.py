"""The ingest queue's dead letters, deployed (moto, the synthesized template's queues with their redrive
policy): a folder file and a bundle import whose messages five deliveries to the real ingest handler did
not finish (a killed run still holds each) go to the dead-letter queue; the real dead-letters handler
leaves them while that lease runs, then ends both in error (the import's uploaded bytes deleted from S3)
and drops a duplicate. Every call the two functions make is allowed by their synthesized roles."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
import requests

from o.agent.portable import bundle
from o.store import files as file_store
from o.store import orgs
from o.store import transfers as transfer_store
from o.store.db import Database
from tests.iam.recorder import iam_request
from tests.iam.template import resources
from tests.integration.aws.test_iam import (
    Deployment,
    _api_event,
    _cold_start,
    _multipart_event,
    deployment,
    template,
)
from tests.lambdas import REGION, Context, acting_as, running_as

__all__ = ["deployment", "template"]  # the fixtures of test_iam.py, shared


def _receive(queue_url: str) -> list[dict[str, Any]]:
    """What Lambda's event source mapping receives (the service, not a function's code), visible again at
    once as when the visibility timeout has passed."""
    outside = running_as.set(None)
    try:
        got = boto3.client("sqs", region_name=REGION).receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
    finally:
        running_as.reset(outside)
    return [{"messageId": m["MessageId"], "body": m["Body"]} for m in got.get("Messages", [])]


def _work_started(deployment: Deployment, monkeypatch: pytest.MonkeyPatch, db: Database) -> tuple[str, str, str]:
    """A folder file uploaded and a bundle import completed through the API, each announced on the ingest
    queue; (the file's id, the upload's id, the upload's S3 key)."""
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"dead-letters-{uuid.uuid4()}")["id"]
        key = orgs.create_api_key(conn, org)[1]
    role = deployment.functions["api"]
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "api", env) as api:

        def call(method: str, path: str, body: Any = None, event: dict[str, Any] | None = None) -> dict[str, Any]:
            response = api.handler(event or _api_event(method, path, key, body), Context(role, alias="live"))
            assert response["statusCode"] < 300, response
            return dict(json.loads(response["body"]))

        folder = call("POST", "/v1/folders/", {"name": "given-up"})["id"]
        upload = _multipart_event(f"/v1/folders/{folder}/upload", key, "notes.md", b"# Notes\nAda likes tea.")
        file_id = call("POST", "", event=upload)["id"]
        agent = call("POST", "/v1/agents/", {"name": "never-arrives"})["id"]
        data = b"".join(bundle.export(db, org, agent))
        session = call("POST", "/v1/uploads/", {"kind": "bundle", "size": len(data), "name": "never-arrives"})
        outside = running_as.set(None)  # the client's own PUT, with the URL's signature
        try:
            put = requests.put(session["upload_url"], data=data, headers=session["upload_headers"], timeout=30)
            assert put.status_code == 200, put.text
        finally:
            running_as.reset(outside)
        assert call("POST", f"/v1/uploads/{session['id']}/complete")["status"] == "queued"
    with db.read() as conn:
        blob_key = conn.execute("SELECT blob_key FROM transfers WHERE id = %s", (session["id"],)).fetchone()
    return file_id, session["id"], blob_key["blob_key"]


def _age(db: Database) -> None:
    """The killed runs' leases have run out, and nothing was written on their work for an hour."""
    with db.transaction() as conn:
        conn.execute("UPDATE folder_files SET claimed_until = now() - interval '1 second',"
                     " updated_at = now() - interval '1 hour' WHERE claimed_until IS NOT NULL")  # fmt: skip
        conn.execute("UPDATE transfers SET claimed_until = now() - interval '1 second',"
                     " updated_at = now() - interval '1 hour' WHERE claimed_until IS NOT NULL")  # fmt: skip


def test_dead_letters_end_the_work_the_ingest_queue_gave_up_on(
    deployment: Deployment, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_id, upload_id, blob_key = _work_started(deployment, monkeypatch, db)
    # killed runs (a Lambda timeout): each holds its work under a lease no delivery can take
    with db.transaction() as conn:
        assert file_store.claim(conn, 3600, file_id) is not None
        assert transfer_store.claim(conn, 3600, upload_id) is not None
    queue_url = deployment.environment("api")["O_FILES_INGEST_QUEUE_URL"]
    (dead_letters,) = [k for k in resources(deployment.template, "AWS::SQS::Queue") if k.startswith("FilesDeadLetters")]
    dead_url = deployment.world.refs[dead_letters]
    ingest_role, dead_role = deployment.functions["ingest"], deployment.functions["dead_letters"]
    with monkeypatch.context() as env, acting_as(ingest_role), _cold_start(deployment, "ingest", env) as ingest:
        for _ in range(5):  # MAX_RECEIVES deliveries, none of which finishes either
            records = _receive(queue_url)
            assert len(records) == 2
            failed = ingest.handler({"Records": records}, Context(ingest_role))["batchItemFailures"]
            assert len(failed) == 2
    assert _receive(queue_url) == []  # SQS moved both to the dead-letter queue

    with monkeypatch.context() as env, acting_as(dead_role), _cold_start(deployment, "dead_letters", env) as dead:
        letters = _receive(dead_url)
        assert sorted(r["body"] for r in letters) == sorted(
            json.dumps(named) for named in ({"file_id": file_id}, {"upload_id": upload_id})
        )
        # the killed runs' leases still run: delivered again later
        held = dead.handler({"Records": letters}, Context(dead_role))["batchItemFailures"]
        assert sorted(f["itemIdentifier"] for f in held) == sorted(r["messageId"] for r in letters)
        _age(db)
        assert dead.handler({"Records": _receive(dead_url)}, Context(dead_role)) == {"batchItemFailures": []}
        # a duplicate delivery, and a record that names nothing: dropped, nothing changes
        poison = {"messageId": "poison", "body": "not json"}
        assert dead.handler({"Records": [*letters, poison]}, Context(dead_role)) == {"batchItemFailures": []}
    with db.read() as conn:
        file = conn.execute("SELECT * FROM folder_files WHERE id = %s", (file_id,)).fetchone()
        job = conn.execute("SELECT * FROM transfers WHERE id = %s", (upload_id,)).fetchone()
    assert file["processing_status"] == "error" and "given up after 5 deliveries" in file["error_message"], file
    assert job["status"] == "error" and "start a new upload session" in job["error_message"], job
    bucket = deployment.environment("dead_letters")["O_FILES_BUCKET"]
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=blob_key)
    assert "Contents" not in listed  # the import's uploaded bytes are gone

    calls = [c for c in deployment.recorder.calls if c.function == dead_role]
    # the database (an IAM token) and the import's bytes; the queue is read by the event source mapping
    assert {iam_request(c).action for c in calls} == {"rds-db:connect", "s3:DeleteObject"}
    denied = deployment.denied()
    assert not denied, "calls the deployed roles would refuse:\n" + "\n".join(denied)
