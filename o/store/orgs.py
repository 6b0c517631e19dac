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
    """The organization of an unrevoked key, and a note of its use: at most one write a minute per key,
    in the same statement (a busy key costs no extra write per request)."""
    row = conn.execute(
        """WITH found AS (
               SELECT id, organization_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL
           ), used AS (
               UPDATE api_keys k SET last_used_at = now() FROM found
               WHERE k.id = found.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
           )
           SELECT organization_id FROM found""",
        (hash_key(secret),),
    ).fetchone()
    return row["organization_id"] if row else None


def list_api_keys(conn: Conn, organization_id: str | None = None) -> list[dict[str, Any]]:
    """Keys with their organization, oldest first; never a secret (only its first characters)."""
    return conn.execute(
        """SELECT k.id, k.name, k.prefix, k.organization_id, o.name AS organization, k.created_at,
                  k.last_used_at, k.revoked_at
           FROM api_keys k JOIN organizations o ON o.id = k.organization_id
           WHERE %(org)s::text IS NULL OR k.organization_id = %(org)s
           ORDER BY k.created_at, k.id""",
        {"org": organization_id},
    ).fetchall()


def revoke_api_key(conn: Conn, key_id: str, organization_id: str | None = None) -> dict[str, Any] | None:
    """Revoke the key (of ``organization_id`` when given): its id, organization, ``revoked_at`` and
    ``just_revoked`` (False when it was revoked before: revoked_at stays the first revocation's), or
    None when there is no such key."""
    return conn.execute(
        """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
           WHERE id = %(key)s AND (%(org)s::text IS NULL OR organization_id = %(org)s)
           RETURNING id, organization_id, revoked_at, revoked_at = now() AS just_revoked""",
        {"key": key_id, "org": organization_id},
    ).fetchone()


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
