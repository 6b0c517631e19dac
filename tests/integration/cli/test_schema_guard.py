"""`o serve` and `o migrate` refuse a database whose schema is newer than their code (a newer release
migrated it), and `o serve` with migrations off refuses one it has not migrated; the embedded Postgres
they started is stopped again. Run through the real CLI (`o.cli.main`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from o.cli import main
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate
from tests.conftest import new_database


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    with new_database(pg_url, "guard") as url:
        yield url


def _from_the_future(url: str) -> None:
    """What a newer release's migration leaves behind."""
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("ALTER TABLE agents ADD COLUMN future_field text")
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, '999_future.sql', 'x')")


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def test_serve_and_migrate_refuse_a_newer_schema(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _from_the_future(database)
    flags = ["--database-url", database, "--data-dir", str(tmp_path)]
    for run_migrations in ("true", "false"):
        monkeypatch.setenv("O_RUN_MIGRATIONS", run_migrations)
        assert main(["serve", *flags, "--port", _port(), "--no-sleeptime"]) == 1
        err = capsys.readouterr().err
        assert "newer than this release of O" in err and "999_future.sql" in err, err
    monkeypatch.delenv("O_RUN_MIGRATIONS")
    assert main(["migrate", *flags]) == 1
    assert "newer than this release of O" in capsys.readouterr().err


def test_serve_without_migrations_refuses_a_schema_it_has_not_migrated(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(database, Path(__file__).parents[2] / "upgrade" / "v0_1_0" / "schema")
    monkeypatch.setenv("O_RUN_MIGRATIONS", "false")
    assert main(["serve", "--database-url", database, "--data-dir", str(tmp_path), "--port", _port()]) == 1
    err = capsys.readouterr().err
    assert "older than this release" in err and "run `o migrate` first" in err
    monkeypatch.delenv("O_RUN_MIGRATIONS")
    assert main(["migrate", "--database-url", database, "--data-dir", str(tmp_path)]) == 0
    assert "applied: 006_api_key_last_used.sql, 007_sealed_tool_secrets.sql" in capsys.readouterr().out


def test_the_embedded_postgres_is_stopped_when_serve_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded = EmbeddedPostgres(tmp_path)
    try:
        _from_the_future(embedded.url)
    finally:
        embedded.stop()
    assert main(["serve", "--data-dir", str(tmp_path), "--port", _port(), "--no-sleeptime"]) == 1
    assert "newer than this release of O" in capsys.readouterr().err
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), "o serve left its Postgres running"
