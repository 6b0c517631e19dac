"""The migrator is safe to run repeatedly and concurrently."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from o.store.migrate import MigrationFailed, discover, migrate
from tests.conftest import new_database


@pytest.fixture
def fresh_db_url(pg_url: str) -> Iterator[str]:
    with new_database(pg_url, "m") as url:
        yield url


def test_rerun_applies_nothing(pg_url: str) -> None:
    assert migrate(pg_url) == []


def test_concurrent_migrators_apply_each_file_once(fresh_db_url: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(fresh_db_url), range(4)))
    applied = [name for r in results for name in r]
    assert sorted(applied) == sorted(m.name for m in discover())
    with psycopg.connect(fresh_db_url) as conn:
        rows = conn.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.name for m in discover()]


def test_failed_migration_leaves_nothing_and_edited_file_is_refused(fresh_db_url: str, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE t1 (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE t2 (id int); SELECT * FROM no_such_table;")
    with pytest.raises(MigrationFailed, match=r"migration 002_bad\.sql failed") as failed:
        migrate(fresh_db_url, tmp_path)
    assert isinstance(failed.value.__cause__, psycopg.errors.UndefinedTable)
    # one transaction for the whole upgrade: the file before the failing one is rolled back too
    with psycopg.connect(fresh_db_url) as conn:
        assert conn.execute("SELECT to_regclass('t1') IS NULL, to_regclass('t2') IS NULL").fetchone() == (True, True)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE t2 (id int);")
    assert migrate(fresh_db_url, tmp_path) == ["001_ok.sql", "002_bad.sql"]
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE t1 (id bigint);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(fresh_db_url, tmp_path)


def test_progress_is_told_of_each_pending_file_and_nothing_when_up_to_date(fresh_db_url: str) -> None:
    told: list[tuple[int, int, str]] = []
    names = [m.name for m in discover()]
    assert migrate(fresh_db_url, progress=lambda *step: told.append(step)) == names
    total = len(names)
    assert told == [(i, total, name) for i, name in enumerate(names)] + [(total, total, "")]
    told.clear()
    assert migrate(fresh_db_url, progress=lambda *step: told.append(step)) == [] and told == []
