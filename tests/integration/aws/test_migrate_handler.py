"""The deploy-time migration custom resource: real handler, real Postgres, a real HTTP response URL.

CloudFormation's pre-signed S3 URL is stood in for by a local HTTP server that records
the PUT (tests/cloudformation.py), so the exact bytes CloudFormation would receive are checked. The database secret
is in moto's Secrets Manager, as the stack gives it. A database that is not reachable yet
is a socket directory whose socket appears later (a link to the test server's).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from functions.migrate import handler as migrate_handler
from functions.migrate.handler import Outcome, retry_delay, unreachable, verdict, with_connect_timeout
from o.store.migrate import _LOCK_KEY, discover
from tests.cloudformation import ResponseSink, request_event, response_sink
from tests.conftest import new_database
from tests.lambdas import Context


@pytest.fixture
def sink() -> Iterator[ResponseSink]:
    with response_sink() as received:
        yield received


def LambdaContext(remaining_ms: int = 60_000) -> Context:
    return Context("o-migrate", memory_limit_in_mb=512, aws_request_id=str(uuid.uuid4()), remaining_ms=remaining_ms)


@pytest.fixture
def fresh_database(pg_url: str) -> Iterator[str]:
    """An empty database on the test server, as a fresh RDS instance would be."""
    with new_database(pg_url, "migrate") as url:
        yield psycopg.conninfo.conninfo_to_dict(url)["dbname"]


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
        # CloudFormation's response URL is the test's server on 127.0.0.1, which an operator must allow
        monkeypatch.setenv("O_OUTBOUND_ALLOW", "127.0.0.1")
        target = pg_url.replace(f"/{info.get('dbname', 'postgres')}?", f"/{fresh_database}?")
        yield target


def _event(kind: str, sink: ResponseSink, physical_id: str | None = None) -> dict[str, Any]:
    return request_event(kind, sink, resource_type="Custom::OSchemaMigrations", logical_id="MigrationsRun",
                         properties={"CodeFingerprint": "f" * 32}, physical_id=physical_id)  # fmt: skip


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

    update = _event("Update", sink, migrate_handler.PHYSICAL_ID)
    migrate_handler.handler(update, LambdaContext())
    updated = sink.received[1]
    assert updated["Status"] == "SUCCESS"
    assert updated["Data"]["Applied"] == "none"
    assert updated["RequestId"] == update["RequestId"]


def test_delete_leaves_the_data_alone(sink: ResponseSink, deployed_env: str) -> None:
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    migrate_handler.handler(_event("Delete", sink, migrate_handler.PHYSICAL_ID), LambdaContext())
    assert [r["Status"] for r in sink.received] == ["SUCCESS", "SUCCESS"]
    assert _applied(deployed_env) == [m.name for m in discover()]


def test_a_database_that_refuses_fails_the_deploy_at_once_with_a_reason(
    sink: ResponseSink, deployed_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O_DB_NAME", "no_such_database")
    started = time.monotonic()
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    (response,) = sink.received
    assert response["Status"] == "FAILED"
    assert "no_such_database" in response["Reason"]
    assert response["PhysicalResourceId"] == migrate_handler.PHYSICAL_ID
    # the server answered "no": waiting would not change that
    assert time.monotonic() - started < migrate_handler.FIRST_DELAY_S


@pytest.fixture
def late_socket(pg_url: str, monkeypatch: pytest.MonkeyPatch, deployed_env: str) -> Iterator[tuple[str, str]]:
    """An O_DB_HOST with no server behind it yet: (socket directory, where the real socket is)."""
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    host = str(info.get("host") or "")
    if not host.startswith("/"):
        pytest.skip("needs the test server on a Unix socket")
    socket = f"{host}/.s.PGSQL.{info.get('port') or 5432}"
    # short: a Unix socket path has a 107-byte limit
    folder = tempfile.mkdtemp(prefix="o-late-")
    monkeypatch.setenv("O_DB_HOST", folder)
    yield folder, socket
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)


def test_a_database_not_reachable_yet_is_tried_again_until_it_is(
    sink: ResponseSink, late_socket: tuple[str, str], deployed_env: str
) -> None:
    folder, socket = late_socket
    link = os.path.join(folder, os.path.basename(socket))
    # the server "comes up" after the first two attempts (at 0 s and 1 s; the third is at 3 s)
    threading.Timer(2.0, os.symlink, args=(socket, link)).start()
    started = time.monotonic()
    migrate_handler.handler(_event("Create", sink), LambdaContext())
    (response,) = sink.received
    assert response["Status"] == "SUCCESS", response["Reason"]
    assert time.monotonic() - started >= 2.0
    assert _applied(deployed_env) == [m.name for m in discover()]


def test_a_database_never_reachable_fails_before_the_timeout_with_the_last_error(
    sink: ResponseSink, late_socket: tuple[str, str]
) -> None:
    budget_s = 4.0
    context = LambdaContext(remaining_ms=migrate_handler._RESPONSE_MARGIN_MS + int(budget_s * 1000))
    started = time.monotonic()
    migrate_handler.handler(_event("Create", sink), context)
    (response,) = sink.received
    assert time.monotonic() - started < budget_s, "the answer must leave before Lambda ends the function"
    assert response["Status"] == "FAILED"
    # attempts at 0, 1 and 3 s; the next (at 7 s) would not fit
    assert "not reachable after 3 attempts" in response["Reason"], response["Reason"]
    assert "OperationalError" in response["Reason"] and late_socket[0] in response["Reason"]


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


# --- the retry decision, without a database --------------------------------------------------------------


def test_only_a_database_that_cannot_be_reached_is_tried_again() -> None:
    refused = psycopg.OperationalError('connection to server at "10.0.0.1", port 5432 failed: Connection refused')
    assert unreachable(refused)
    assert unreachable(psycopg.errors.CannotConnectNow("the database system is starting up"))
    assert unreachable(psycopg.errors.AdminShutdown("terminating connection due to administrator command"))
    # the server is up and says no
    assert not unreachable(psycopg.OperationalError('FATAL:  database "o" does not exist'))
    assert not unreachable(psycopg.OperationalError('FATAL:  password authentication failed for user "o"'))
    # not about reaching it at all
    assert not unreachable(psycopg.errors.UndefinedTable('relation "agents" does not exist'))
    assert not unreachable(psycopg.errors.SyntaxError("syntax error at or near"))
    assert not unreachable(RuntimeError("migration 003_x.sql changed after it was applied"))
    assert not unreachable(ValueError("the database secret is not JSON"))


def test_backoff_doubles_up_to_a_cap_and_stops_when_the_time_is_gone() -> None:
    refused = psycopg.OperationalError("Connection refused")
    assert [retry_delay(refused, attempt, 600.0) for attempt in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert retry_delay(refused, 2, 4.5) == 4.0
    assert retry_delay(refused, 2, 4.0) is None
    assert retry_delay(psycopg.OperationalError('FATAL:  role "x" does not exist'), 0, 600.0) is None


def test_every_connection_attempt_has_a_timeout() -> None:
    assert with_connect_timeout("postgresql://u:p@h:5432/o?sslmode=require") == (
        "postgresql://u:p@h:5432/o?sslmode=require&connect_timeout=10"
    )
    assert with_connect_timeout("postgresql://u@h/o") == "postgresql://u@h/o?connect_timeout=10"
    assert with_connect_timeout("host=h dbname=o") == "host=h dbname=o connect_timeout=10"
    assert with_connect_timeout("postgresql://h/o?connect_timeout=3") == "postgresql://h/o?connect_timeout=3"


def test_cloudformation_is_told_what_happened() -> None:
    done = Outcome(applied=["001_init.sql"], attempts=1)
    assert verdict(done, finished=True) == ("SUCCESS", "applied 1 migration(s)", {"Applied": "001_init.sql"})
    assert verdict(Outcome(applied=[], attempts=3), finished=True)[2] == {"Applied": "none"}
    status, reason, _ = verdict(Outcome(error="ProgrammingError: x", last_error="ProgrammingError: x", attempts=1),
                                finished=True)  # fmt: skip
    assert (status, reason) == ("FAILED", "migrations failed: ProgrammingError: x")
    stuck = Outcome(attempts=4, last_error="OperationalError: timeout expired")
    status, reason, _ = verdict(stuck, finished=False)
    assert status == "FAILED"
    assert reason.startswith("migrations did not finish before the function timeout; the database was not reachable")
    assert reason.endswith("last error: OperationalError: timeout expired")
