"""The app role the deployed functions connect as (o/store/roles.py), on the real Postgres.

Migrations run as the owner and make the role; the role may read and write rows and nothing else. The
functions connect as it with an IAM auth token made for each new connection (o/aws/database.py), here
signed by boto3 under moto with test credentials (the embedded Postgres trusts local connections, so
the token's check is AWS's side; what is checked here is that every connection gets a fresh one).
Also: ``o migrate`` on a freshly created, empty database (its pool must not need the vector type
the first migration creates).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import psycopg
import pytest
from moto import mock_aws

from o import runtime
from o.aws.database import IamAuthToken, iam_database_url
from o.config import Settings
from o.store import orgs
from o.store.db import Database
from o.store.migrate import discover, migrate
from tests.conftest import new_database
from tests.lambdas import aws_credentials


@pytest.fixture
def fresh_database(pg_url: str) -> Iterator[str]:
    """The URI of a new, empty database on the test server (a fresh RDS instance's)."""
    with new_database(pg_url, "approle") as url:
        yield url


@pytest.fixture
def app_role(fresh_database: str) -> Iterator[str]:
    role = f"o_app_{uuid.uuid4().hex[:8]}"
    yield role
    # its grants are on the fresh database and its tables: revoke them there, then drop the role
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def _uri(url: str, *, dbname: str | None = None, user: str | None = None) -> str:
    """``url`` as a ``postgresql://`` URI (what O_DATABASE_URL takes), with another database or user."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    user = user or str(info.get("user") or "postgres")
    query = urlencode({"host": str(info.get("host") or "localhost"), "port": str(info.get("port") or 5432)})
    return f"postgresql://{quote(user)}@/{quote(dbname or str(info.get('dbname') or 'postgres'))}?{query}"


def _as(url: str, role: str) -> str:
    return _uri(url, user=role)


def test_o_migrate_brings_a_fresh_empty_database_to_the_current_schema(fresh_database: str) -> None:
    rt = runtime.start(Settings(database_url=fresh_database), migrate_schema=False)
    try:
        applied, sealed = runtime.upgrade(rt)
        with rt.db.read() as conn:
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    finally:
        rt.close()
    assert applied == [m.name for m in discover()] and sealed == 0
    # a pool opened now has the vector type: archival search works as soon as the server starts
    db = Database(fresh_database, min_size=1, max_size=1).open()
    try:
        with db.read() as conn:
            value = conn.execute("SELECT '[1,2,3]'::vector AS v").fetchone()
        assert value is not None and value["v"].to_list() == [1.0, 2.0, 3.0]
    finally:
        db.close()


def test_the_app_role_reads_and_writes_rows_and_cannot_change_the_schema(fresh_database: str, app_role: str) -> None:
    migrate(fresh_database, app_role=app_role)
    # idempotent: a second deploy's migration (nothing pending) grants again without failing
    assert migrate(fresh_database, app_role=app_role) == []
    as_app = _as(fresh_database, app_role)

    db = Database(as_app, min_size=1, max_size=1).open()
    try:
        with db.transaction() as conn:
            org = orgs.get_or_create_org(conn, "app-role")
            key_id, _ = orgs.create_api_key(conn, org["id"], "k")
        with db.transaction() as conn:
            conn.execute("UPDATE api_keys SET name = 'renamed' WHERE id = %s", (key_id,))
            conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
        with db.read() as conn:
            assert conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone() == {"n": len(discover())}
    finally:
        db.close()

    refused = [
        "CREATE TABLE intruder (id int)",
        "ALTER TABLE agents ADD COLUMN intruder int",
        "DROP TABLE api_keys",
        "TRUNCATE organizations",
        "CREATE INDEX intruder ON agents (name)",
        "CREATE SCHEMA intruder",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, '999_x.sql', 'x')",
        "DELETE FROM schema_migrations",
    ]
    with psycopg.connect(as_app, autocommit=True) as conn:
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # and it is no superuser, may make no roles or databases
        flags = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert flags == (False, False, False)


def test_a_migration_that_adds_a_table_grants_it_to_the_app_role(
    fresh_database: str, app_role: str, tmp_path: pytest.TempPathFactory
) -> None:
    folder = tmp_path / "schema"  # type: ignore[operator]
    folder.mkdir()
    (folder / "001_one.sql").write_text("CREATE TABLE one (id bigserial PRIMARY KEY, v text);")
    migrate(fresh_database, folder, app_role=app_role)
    (folder / "002_two.sql").write_text("CREATE TABLE two (id bigserial PRIMARY KEY, v text);")
    migrate(fresh_database, folder, app_role=app_role)
    with psycopg.connect(_as(fresh_database, app_role)) as conn:
        conn.execute("INSERT INTO one (v) VALUES ('a')")
        conn.execute("INSERT INTO two (v) VALUES ('b')")  # its sequence too
        assert conn.execute("SELECT v FROM two").fetchall() == [("b",)]


def test_each_new_connection_gets_a_fresh_iam_token(
    fresh_database: str, app_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(fresh_database, app_role=app_role)
    aws_credentials(monkeypatch, "us-east-1")
    info = psycopg.conninfo.conninfo_to_dict(fresh_database)
    host, port = str(info["host"]), int(info.get("port") or 5432)
    url = iam_database_url(host, app_role, str(info["dbname"]), port=port)
    assert psycopg.conninfo.conninfo_to_dict(url).get("password") is None, "no password in the URI"
    tokens: list[str] = []
    with mock_aws():
        signer = IamAuthToken(host, port, app_role)

        def password() -> str:
            tokens.append(signer())
            return tokens[-1]

        db = Database(url, min_size=2, max_size=2, password=password).open()
        try:
            with db.transaction() as conn:
                assert conn.execute("SELECT current_user AS u").fetchone() == {"u": app_role}
        finally:
            db.close()
    assert len(tokens) == 2, "one token per connection the pool opened"
    # a SigV4 presigned rds-db connect request for this user at this endpoint
    token = urlsplit(f"https://{tokens[0]}")
    query = parse_qs(token.query)
    assert query["Action"] == ["connect"] and query["DBUser"] == [app_role]
    assert "X-Amz-Signature" in query and query["X-Amz-Credential"][0].endswith("/us-east-1/rds-db/aws4_request")
