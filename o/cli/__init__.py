"""`o` — the command line: `o serve`, `o keys create|list|revoke`, `o migrate`, `o evolve …`, `o export`, `o import`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from o.cli import evolve, keys, portable, serve
from o.config import ConfigError
from o.store.migrate import SchemaError


def db_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="where the embedded Postgres keeps its data (env O_DATA_DIR)")
    p.add_argument("--database-url", help="use this Postgres instead of the embedded one (env O_DATABASE_URL)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="o", description="O: self-evolving stateful agents (Letta v1 API)")
    sub = root.add_subparsers(dest="command", required=True)
    serve.add_parser(sub, db_flags)
    keys.add_parser(sub, db_flags)
    p_migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    db_flags(p_migrate)
    p_migrate.set_defaults(func=keys.migrate_cmd)
    evolve.add_parser(sub, db_flags)
    portable.add_parsers(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"o: {exc}", file=sys.stderr)
        return 2
    except SchemaError as exc:
        # a failed migration (rolled back) or a schema this release does not know: say so and stop
        print(f"o: {exc}", file=sys.stderr)
        return 1
