"""Apply the numbered SQL files in ``schema/`` exactly once, safely under concurrency, all or nothing.

Used by ``o serve`` at start, ``o migrate`` and the deploy-time migration Lambda. A session-level
advisory lock serializes concurrent migrators. Every pending file runs in ONE transaction together
with its row in ``schema_migrations`` (Postgres DDL is transactional): if any file fails, every
file of the upgrade is rolled back and the database stays at the version it was, so the release
that ran before still starts on it. A database migrated by a newer release than this code is
refused, never half-understood (:class:`SchemaTooNew`).

A migration file must therefore hold only statements that run inside a transaction (no
``CREATE INDEX CONCURRENTLY``, no ``VACUUM``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from o.store.roles import ensure_app_role

_LOCK_KEY = 0x0A6E_5C4E  # arbitrary, stable: "O schema"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_CREATE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""


# Told before each pending file runs and once when all have: (files done, files pending, the next file's name
# or "" at the end). The files commit together at the end, so "done" means run, not yet committed.
Progress = Callable[[int, int, str], None]


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to, or used at, the version this code expects."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer release: this code does not know its schema."""


class MigrationFailed(SchemaError):
    """A migration file failed; the whole upgrade was rolled back."""


def schema_dir() -> Path:
    """The ``schema/`` folder: beside the package in a checkout, inside it in a Lambda bundle."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "schema", here.parents[1] / "schema"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("schema/ folder with the SQL migrations was not found")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str


def discover(folder: Path | None = None) -> list[Migration]:
    folder = folder or schema_dir()
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 001_name.sql: {path.name}")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a number in {folder}")
    return found


# -- decisions (no database) ------------------------------------------------------------------------------


def describe_version(applied: Mapping[int, Applied]) -> str:
    """How an operator reads a database's schema version: "version 5 (005_evolution.sql)"."""
    if not applied:
        return "an empty schema (no migration applied)"
    top = applied[max(applied)]
    return f"version {top.version} ({top.name})"


def check_not_newer(known: list[Migration], applied: Mapping[int, Applied]) -> None:
    """Refuse a database holding migrations this code does not have: a newer release migrated it."""
    ours = {m.version for m in known}
    unknown = sorted(v for v in applied if v not in ours)
    if unknown:
        names = ", ".join(applied[v].name for v in unknown)
        newest = f"version {known[-1].version} ({known[-1].name})" if known else "no migrations"
        raise SchemaTooNew(
            f"the database's schema is at {describe_version(applied)}, newer than this release of O knows "
            f"(it has {newest}; unknown to it: {names}). A newer O migrated it: run that release or a later one, "
            "or restore the backup taken before the upgrade"
        )


def pending(known: list[Migration], applied: Mapping[int, Applied]) -> list[Migration]:
    """The migrations still to apply, in order; refuses a newer schema or an applied file edited since."""
    check_not_newer(known, applied)
    for migration in known:
        done = applied.get(migration.version)
        if done is not None and done.checksum != migration.checksum:
            raise SchemaError(
                f"migration {migration.name} changed after it was applied; "
                "add a new numbered file instead of editing an applied one"
            )
    return [m for m in known if m.version not in applied]


def failure_message(failed: Migration, batch: list[Migration], applied: Mapping[int, Applied], error: str) -> str:
    rolled_back = ", ".join(m.name for m in batch)
    return (
        f"migration {failed.name} failed: {error}. Nothing was applied (rolled back: {rolled_back}); "
        f"the database is still at {describe_version(applied)}, as it was before"
    )


# -- effects ------------------------------------------------------------------------------------------------


def _applied(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, Applied]:
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(str(r[0])): Applied(int(str(r[0])), str(r[1]), str(r[2])) for r in rows}


def _apply_all(
    conn: psycopg.Connection[tuple[object, ...]],
    batch: list[Migration],
    before: dict[int, Applied],
    progress: Progress | None = None,
) -> None:
    with conn.transaction():
        for done, migration in enumerate(batch):
            if progress is not None:
                progress(done, len(batch), migration.name)
            try:
                conn.execute(migration.sql)
            except psycopg.Error as exc:
                error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise MigrationFailed(failure_message(migration, batch, before, error)) from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    if progress is not None:
        progress(len(batch), len(batch), "")


def migrate(
    url: str, folder: Path | None = None, *, app_role: str | None = None, progress: Progress | None = None
) -> list[str]:
    """Apply the pending migrations, all in one transaction; return the names applied by this call.
    With ``app_role``, then create that role if needed and grant it the application's rights on every
    table (:func:`o.store.roles.ensure_app_role`), also when nothing was pending. ``progress`` is told of
    each file (only when some are pending: a database that is up to date says nothing).

    Raises :class:`MigrationFailed` (nothing applied), :class:`SchemaTooNew`, or :class:`SchemaError`.
    """
    known = discover(folder)
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            before = _applied(conn)
            batch = pending(known, before)
            if batch:
                _apply_all(conn, batch, before, progress)
            if app_role:
                ensure_app_role(conn, app_role)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return [m.name for m in batch]


def applied_migrations(url: str) -> dict[int, Applied]:
    """What the database's ``schema_migrations`` records (empty for a database never migrated)."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        return _applied(conn) if exists and exists[0] else {}


def check_schema(url: str, folder: Path | None = None) -> None:
    """Refuse a database this code cannot serve: migrated by a newer release (:class:`SchemaTooNew`),
    or not yet migrated to this one (when migrations at start are turned off)."""
    known = discover(folder)
    applied = applied_migrations(url)
    todo = pending(known, applied)
    if todo:
        raise SchemaError(
            f"the database's schema is at {describe_version(applied)}, older than this release of O "
            f"({len(todo)} migration(s) pending: {', '.join(m.name for m in todo)}); run `o migrate` first"
        )
