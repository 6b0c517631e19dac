"""`o keys create|list|revoke` and `o migrate`: work on the database directly, next to `o serve` or
against RDS. A revoked key is refused by the next request in every server process (keys are checked
on every request, never cached)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from o import runtime
from o.cli.progress import steps
from o.cli.settings import from_args
from o.store import orgs

COLUMNS = (
    ("id", "ID"),
    ("name", "NAME"),
    ("organization", "ORGANIZATION"),
    ("created_at", "CREATED"),
    ("last_used_at", "LAST USED"),
    ("status", "STATUS"),
)


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


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"


def key_lines(keys: list[dict[str, Any]]) -> list[str]:
    """The table `o keys list` prints: one aligned row per key, under a header."""
    rows = [
        {
            "id": k["id"],
            "name": k["name"] or "-",
            "organization": k["organization"],
            "created_at": _when(k["created_at"]),
            "last_used_at": _when(k["last_used_at"]),
            "status": f"revoked {_when(k['revoked_at'])}" if k["revoked_at"] else "active",
        }
        for k in keys
    ]
    widths = {field: max([len(title)] + [len(r[field]) for r in rows]) for field, title in COLUMNS}
    header = "  ".join(title.ljust(widths[field]) for field, title in COLUMNS).rstrip()
    return [header] + ["  ".join(r[field].ljust(widths[field]) for field, _ in COLUMNS).rstrip() for r in rows]


def key_json(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in key.items()}


def keys_list(args: argparse.Namespace) -> int:
    rt = runtime.start(from_args(args))
    try:
        with rt.db.read() as conn:
            org = orgs.find(conn, args.org) if args.org else None
            if args.org and org is None:
                print(f"o: no organization named {args.org!r}", file=sys.stderr)
                return 1
            keys = orgs.list_api_keys(conn, org["id"] if org else None)
    finally:
        rt.close()
    if args.json:
        print(json.dumps([key_json(k) for k in keys], indent=2))
    else:
        print("\n".join(key_lines(keys)))
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    rt = runtime.start(from_args(args))
    try:
        with rt.db.transaction() as conn:
            revoked = orgs.revoke_api_key(conn, args.key_id)
    finally:
        rt.close()
    if revoked is None:
        print(f"o: no API key {args.key_id!r} (`o keys list` shows the ids)", file=sys.stderr)
        return 1
    if revoked["just_revoked"]:
        print(f"revoked {revoked['id']} (organization {revoked['organization_id']}); it is refused from now on")
    else:
        print(f"{revoked['id']} was already revoked on {_when(revoked['revoked_at'])}")
    return 0


def migrate_cmd(args: argparse.Namespace) -> int:
    rt = runtime.start(from_args(args), migrate_schema=False)
    try:
        with steps("applying migrations") as told:
            applied, sealed = runtime.upgrade(rt, progress=told)
    finally:
        rt.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    if sealed:
        print(f"sealed {sealed} tool variable(s) an earlier release stored in plaintext")
    return 0


def add_parser(sub: Any, db_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p_keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_create = keys_sub.add_parser("create", help="create an API key and print it")
    db_flags(p_create)
    p_create.add_argument("--org", default="default", help="organization name (created if needed)")
    p_create.add_argument("--name", help="a label for the key")
    p_create.set_defaults(func=keys_create)

    p_list = keys_sub.add_parser("list", help="list API keys: id, name, organization, created, last used, status")
    db_flags(p_list)
    p_list.add_argument("--org", help="only this organization's keys (name or id)")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.set_defaults(func=keys_list)

    p_revoke = keys_sub.add_parser("revoke", help="revoke an API key: the next request with it is refused")
    db_flags(p_revoke)
    p_revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `o keys list` shows it")
    p_revoke.set_defaults(func=keys_revoke)
