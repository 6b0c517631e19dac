"""Apply the numbered SQL files in ``schema/`` exactly once, safely under concurrency.

Used by ``o serve`` at start and by the deploy-time migration Lambda. A session-level
advisory lock serializes concurrent migrators; each file runs in its own transaction
together with its row in ``schema_migrations``, so a failed file leaves nothing behind
and a re-run skips what is applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

_LOCK_KEY = 0x0A6E_5C4E  # arbitrary, stable: "O schema"
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


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


def migrate(url: str, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            }
            for migration in discover(folder):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.name} changed after it was applied; "
                            "add a new numbered file instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
