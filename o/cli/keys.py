"""`o keys create` and `o migrate`: work on the database directly, next to `o serve` or against RDS."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from o import runtime
from o.cli.settings import from_args
from o.store import orgs
from o.store.migrate import migrate


def keys_create(args: argparse.Namespace) -> int:
    rt = runtime.start(from_args(args))
    try:
        with rt.db.transaction() as conn:
            org = orgs.get_or_create_org(conn, args.org)
            key_id, secret = orgs.create_api_key(conn, org["id"], args.name)
    finally:
        rt.close()
    print(secret)
    print(
        f"(key {key_id} for organization {org['name']!r} / {org['id']}; shown once, store it safely)", file=sys.stderr
    )
    return 0


def migrate_cmd(args: argparse.Namespace) -> int:
    rt = runtime.start(from_args(args), migrate_schema=False)
    try:
        applied = migrate(rt.database_url)
    finally:
        rt.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def add_parser(sub: Any, db_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p_keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_create = keys_sub.add_parser("create", help="create an API key and print it")
    db_flags(p_create)
    p_create.add_argument("--org", default="default", help="organization name (created if needed)")
    p_create.add_argument("--name", help="a label for the key")
    p_create.set_defaults(func=keys_create)
