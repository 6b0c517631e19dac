"""Organizations and API keys. Keys are stored as sha256 hashes; the secret is shown once."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from o.ids import new_id
from o.store.db import Conn

KEY_PREFIX = "sk-o-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def get_or_create_org(conn: Conn, name: str) -> dict[str, Any]:
    row = conn.execute(
        """INSERT INTO organizations (id, name) VALUES (%s, %s)
           ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
           RETURNING id, name, created_at""",
        (new_id("org"), name),
    ).fetchone()
    assert row is not None
    return row


def create_api_key(conn: Conn, organization_id: str, name: str | None = None) -> tuple[str, str]:
    """Create a key; return (key id, secret). Only the hash is stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_id("key")
    conn.execute(
        "INSERT INTO api_keys (id, organization_id, name, key_hash, prefix) VALUES (%s, %s, %s, %s, %s)",
        (key_id, organization_id, name, hash_key(secret), secret[:12]),
    )
    return key_id, secret


def organization_for_key(conn: Conn, secret: str) -> str | None:
    row = conn.execute(
        "SELECT organization_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_key(secret),),
    ).fetchone()
    return row["organization_id"] if row else None


def revoke_api_key(conn: Conn, organization_id: str, key_id: str) -> bool:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND organization_id = %s AND revoked_at IS NULL",
        (key_id, organization_id),
    )
    return cur.rowcount == 1


def find(conn: Conn, name_or_id: str) -> dict[str, Any] | None:
    """The organization with this name or id."""
    return conn.execute("SELECT * FROM organizations WHERE name = %s OR id = %s", (name_or_id, name_or_id)).fetchone()


def create(conn: Conn, organization_id: str, name: str) -> None:
    conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (organization_id, name))


def delete(conn: Conn, organization_id: str) -> None:
    """Delete the organization and, by cascade, everything in it."""
    conn.execute("DELETE FROM organizations WHERE id = %s", (organization_id,))


def delete_named_like(conn: Conn, pattern: str) -> int:
    """Delete the organizations whose name matches the LIKE ``pattern``; how many went."""
    return conn.execute("DELETE FROM organizations WHERE name LIKE %s", (pattern,)).rowcount
