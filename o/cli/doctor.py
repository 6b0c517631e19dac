"""`o doctor`: is this machine ready to run O? Checks Python, the data dir, the database (embedded or
O_DATABASE_URL) and pgvector, each configured model provider (reachable, key accepted: it is asked for its
model list, which spends no tokens) and the embedder, and says what to fix. Exit 0 when all pass."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from o import runtime
from o.cli.settings import from_args
from o.config import Settings
from o.memory.embeddings import Embedders, EmbeddingConfig
from o.store import reach

MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def python_version() -> list[Finding]:
    here = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    return [Finding("python", ok, f"Python {here} ({sys.executable})", "" if ok else "install Python 3.11 or newer")]


def data_dir(settings: Settings) -> list[Finding]:
    if settings.database_url:
        return [Finding("data dir", True, f"not used: the database is O_DATABASE_URL ({settings.data_dir})")]
    path = settings.data_dir
    probe = path if path.exists() else next(p for p in path.parents if p.exists())
    writable = os.access(probe, os.W_OK)
    made = "exists" if path.exists() else "will be created"
    fix = "" if writable else f"make {probe} writable, or choose another with --data-dir / O_DATA_DIR"
    return [Finding("data dir", writable, f"{path} ({made})", fix)]


def database(settings: Settings) -> list[Finding]:
    where = f"O_DATABASE_URL ({reach.where(settings.database_url)})" if settings.database_url else "embedded Postgres"
    started = time.monotonic()
    if settings.database_url:
        try:
            reach.check_reachable(settings.database_url)
        except reach.DatabaseUnreachable as exc:
            return [Finding("database", False, exc.message, "start that Postgres, or correct O_DATABASE_URL")]
    rt = runtime.start(settings, migrate_schema=False)
    try:
        with rt.db.read() as conn:
            facts = reach.facts(conn)
    finally:
        rt.close()
    found = [Finding("database", True, f"{where}: PostgreSQL {facts['server']} ({time.monotonic() - started:.1f} s)")]
    if facts.get("installed"):
        found.append(Finding("pgvector", True, f"vector {facts['installed']} installed"))
    elif facts.get("available"):
        found.append(Finding("pgvector", True, f"vector {facts['available']} available (`o migrate` installs it)"))
    else:
        fix = "install pgvector on that server (e.g. the postgresql-NN-pgvector package), or unset O_DATABASE_URL"
        found.append(Finding("pgvector", False, "the vector extension is not available", fix))
    return found


def providers(settings: Settings) -> list[Finding]:
    checks = runtime.model_catalog(settings).check()
    found = []
    for c in checks:
        name = f"provider {c.provider}"
        if c.error is None:
            found.append(Finding(name, True, f"{c.endpoint}: {c.models} models listed"))
        elif not c.configured:  # an Ollama looked for on this machine, not configured: its absence is fine
            found.append(Finding(name, True, f"{c.endpoint or 'localhost:11434'}: not running (optional)"))
        else:
            fix = "check its key variable and that the endpoint is reachable from here (see README: Configuration)"
            found.append(Finding(name, False, f"{c.endpoint}: {c.error}", fix))
    if not any(c.configured or c.error is None for c in checks):
        fix = "set OPENAI_API_KEY, ANTHROPIC_API_KEY or GROQ_API_KEY, or run a local model (README: Run with a local "
        fix += "model)"
        found.append(Finding("providers", False, "no model provider is configured", fix))
    return found


def embedder(settings: Settings) -> list[Finding]:
    keys = runtime.key_source(settings)
    source = Embedders.from_settings(keys, settings.embedding, settings.llm, runtime.outbound_policy(settings))
    config = EmbeddingConfig.default()
    started = time.monotonic()
    vectors = source.for_config(config).embed(["O doctor checks the embedder."])
    took = time.monotonic() - started
    return [Finding("embedder", True, f"{config.handle}: {vectors.shape[-1]} dimensions ({took:.1f} s)")]


CHECKS: tuple[tuple[str, Callable[[Settings], list[Finding]]], ...] = (
    ("data dir", data_dir),
    ("database", database),
    ("providers", providers),
    ("embedder", embedder),
)


def run(settings: Settings) -> list[Finding]:
    found = python_version()
    for name, check in CHECKS:
        try:
            found.extend(check(settings))
        except Exception as exc:  # a check that cannot run is a finding, not a crash of the doctor
            found.append(Finding(name, False, " ".join(str(exc).split())[:300] or type(exc).__name__, "see above"))
    return found


def lines(found: list[Finding]) -> list[str]:
    out = []
    for f in found:
        out.append(f"{'ok  ' if f.ok else 'FAIL'}  {f.name}: {f.detail}")
        if f.fix:
            out.append(f"      fix: {f.fix}")
    return out


def doctor(args: argparse.Namespace) -> int:
    settings = from_args(args, check_database=False)  # an unreachable one is a finding here
    found = run(settings)
    print("\n".join(lines(found)))
    failed = [f.name for f in found if not f.ok]
    print(
        f"{len(found) - len(failed)} of {len(found)} checks passed" + (f"; fix: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def add_parser(sub: Any, db_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("doctor", help="check Python, the database, pgvector, model providers and the embedder")
    db_flags(p)
    p.set_defaults(func=doctor)
