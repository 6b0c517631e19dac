"""The deploy-time migration custom resource: real handler, real Postgres, a real HTTP response URL.

CloudFormation's pre-signed S3 URL is stood in for by a local HTTP server that records
the PUT, so the exact bytes CloudFormation would receive are checked.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from functions.migrate import handler as migrate_handler
from o.store.migrate import _LOCK_KEY, discover
from tests.lambdas import Context


@dataclass
class ResponseSink:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)


@pytest.fixture
def sink() -> Iterator[ResponseSink]:
    box: list[ResponseSink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            box[0].received.append(json.loads(body))
            box[0].content_types.append(self.headers.get("Content-Type"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    box.append(ResponseSink(url=f"http://127.0.0.1:{server.server_port}/response?X-Amz-Signature=x"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()


def LambdaContext(remaining_ms: int = 60_000) -> Context:
    return Context("o-migrate", memory_limit_in_mb=512, aws_request_id=str(uuid.uuid4()), remaining_ms=remaining_ms)


@pytest.fixture
def fresh_database(pg_url: str) -> Iterator[str]:
    """An empty database on the test server, as a fresh RDS instance would be."""
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def deployed_env(monkeypatch: pytest.MonkeyPatch, pg_url: str, fresh_database: str) -> Iterator[str]:
    """The environment the stack gives the function: proxy host, RDS secret ARN, database name."""
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("O_DATABASE_URL", raising=False)
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="o/db",
            SecretString=json.dumps(
                {"username": info.get("user", "postgres"), "password": "x", "port": int(info.get("port") or 5432)}
            ),
        )["ARN"]
        monkeypatch.setenv("O_DB_HOST", info["host"])
        monkeypatch.setenv("O_DB_SECRET_ARN", arn)
        monkeypatch.setenv("O_DB_NAME", fresh_database)
        target = pg_url.replace(f"/{info.get('dbname', 'postgres')}?", f"/{fresh_database}?")
        yield target


def _event(kind: str, sink: ResponseSink, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": kind,
        "ResponseURL": sink.url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/O/abc",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "MigrationsRun",
        "ResourceType": "Custom::OSchemaMigrations",
        "ResourceProperties": {"CodeFingerprint": "f" * 32},
        **extra,
    }


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]


def test_create_applies_every_migration_then_update_applies_none(sink: ResponseSink, deployed_env: str) -> None:
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    (created,) = sink.received
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == migrate_handler.PHYSICAL_ID
    names = [m.name for m in discover()]
    assert created["Data"]["Applied"] == ",".join(names)
    assert _applied(deployed_env) == names
    assert sink.content_types == [""]

    update = _event("Update", sink, PhysicalResourceId=migrate_handler.PHYSICAL_ID)
    migrate_handler.handler(update, LambdaContext())
    updated = sink.received[1]
    assert updated["Status"] == "SUCCESS"
    assert updated["Data"]["Applied"] == "none"
    assert updated["RequestId"] == update["RequestId"]


def test_delete_leaves_the_data_alone(sink: ResponseSink, deployed_env: str) -> None:
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    migrate_handler.handler(_event("Delete", sink, PhysicalResourceId=migrate_handler.PHYSICAL_ID), LambdaContext())
    assert [r["Status"] for r in sink.received] == ["SUCCESS", "SUCCESS"]
    assert _applied(deployed_env) == [m.name for m in discover()]


def test_an_unreachable_database_fails_the_deploy_with_a_reason(
    sink: ResponseSink, deployed_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O_DB_NAME", "no_such_database")
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    (response,) = sink.received
    assert response["Status"] == "FAILED"
    assert "no_such_database" in response["Reason"]
    assert response["PhysicalResourceId"] == migrate_handler.PHYSICAL_ID


def test_a_migration_that_outlives_the_function_is_reported_before_the_timeout(
    sink: ResponseSink, deployed_env: str
) -> None:
    # Another migrator holds the lock, so this one waits; the response must still go out.
    with psycopg.connect(deployed_env, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        context = LambdaContext(remaining_ms=migrate_handler._RESPONSE_MARGIN_MS + 1_500)
        migrate_handler.handler(_event("Create", sink), context)
        holder.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    (response,) = sink.received
    assert response["Status"] == "FAILED"
    assert "timeout" in response["Reason"]


def test_operator_creates_the_first_api_key_through_the_function(deployed_env: str) -> None:
    migrate_handler.handler({"action": "migrate"}, LambdaContext())
    created = migrate_handler.handler({"action": "create_api_key", "org": "acme", "name": "first"}, LambdaContext())
    assert created is not None and created["api_key"]
    with psycopg.connect(deployed_env) as conn:
        row = conn.execute(
            "SELECT o.name, k.name FROM api_keys k JOIN organizations o ON o.id = k.organization_id WHERE k.id = %s",
            (created["key_id"],),
        ).fetchone()
        assert row == ("acme", "first")
        stored = conn.execute("SELECT key_hash FROM api_keys WHERE id = %s", (created["key_id"],)).fetchone()
        assert stored is not None and created["api_key"] not in stored[0]
    unknown = migrate_handler.handler({"action": "drop_everything"}, LambdaContext())
    assert unknown is not None and "unknown action" in unknown["error"]
