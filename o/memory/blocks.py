"""Core memory blocks: creation, edits under a row lock, and the limit rules.

The agent's memory tools and the API both edit blocks through these functions, so the
character limit, read-only flag and lost-update protection hold for every writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from o.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from o.ids import new_id
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store.db import Conn

DEFAULT_LIMIT = 20_000


def check_fits(label: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise LimitExceeded(
            f"block {label!r}: value is {len(value)} characters, over its limit of {limit}",
            label=label,
            length=len(value),
            limit=limit,
        )


def create(conn: Conn, organization_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    label = spec["label"]
    value = spec.get("value") or ""
    limit = spec.get("limit") or DEFAULT_LIMIT
    if not label or not label.strip():
        raise InvalidInput("block label must not be empty")
    check_fits(label, value, limit)
    return block_store.insert(
        conn,
        {
            "id": new_id("block"),
            "organization_id": organization_id,
            "label": label,
            "value": value,
            "char_limit": limit,
            "description": spec.get("description"),
            "read_only": bool(spec.get("read_only", False)),
            "is_template": bool(spec.get("is_template", False)),
            "template_name": spec.get("template_name"),
            "metadata": spec.get("metadata") or {},
        },
    )


def update(conn: Conn, organization_id: str, block_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Update fields of a block (API edit); the value must fit the (possibly new) limit."""
    current = block_store.lock(conn, organization_id, block_id)
    if current is None:
        raise NotFound(f"block {block_id} not found")
    return update_locked(conn, current, changes)


def update_locked(conn: Conn, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """:func:`update` of a block the caller already read under its row lock (``block_store.lock``
    or ``block_store.lock_by_label`` in this transaction), without locking it a second time."""
    return _write(conn, current, _to_columns(changes))


def edit_value(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    label: str,
    edit: Callable[[str], str],
    *,
    by_agent: bool = True,
) -> dict[str, Any]:
    """Apply ``edit`` to the current value of the agent's block ``label`` under its row lock.

    Used by the memory tools: concurrent appends to one block serialize and none is lost.
    """
    current = block_store.lock_by_label(conn, organization_id, agent_id, label)
    if current is None:
        raise NotFound(f"the agent has no memory block labelled {label!r}")
    if by_agent and current["read_only"]:
        raise Conflict(f"block {label!r} is read-only")
    return _write(conn, current, {"value": edit(current["value"])})


def _to_columns(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    if "limit" in out:
        out["char_limit"] = out.pop("limit")
    return out


def _write(conn: Conn, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    if "metadata" in changes and changes["metadata"] is None:
        changes["metadata"] = {}
    if changes.get("label") is not None and not str(changes["label"]).strip():
        raise InvalidInput("block label must not be empty")
    if "char_limit" in changes and (changes["char_limit"] is None or changes["char_limit"] < 1):
        raise InvalidInput("block limit must be a positive integer")
    value = changes.get("value", current["value"])
    if value is None:
        raise InvalidInput("block value must not be null")
    check_fits(changes.get("label") or current["label"], value, changes.get("char_limit") or current["char_limit"])
    return block_store.write(conn, current["id"], changes)


def attach(conn: Conn, organization_id: str, agent_id: str, block_id: str) -> None:
    block = block_store.get(conn, organization_id, block_id)
    if block is None:
        raise NotFound(f"block {block_id} not found")
    owner = block_store.attached_label_owner(conn, agent_id, block["label"])
    if owner == block_id:
        return
    if owner is not None:
        raise Conflict(f"the agent already has a block labelled {block['label']!r} ({owner}); detach it first")
    block_store.attach(conn, agent_id, block)
    agent_store.touch(conn, agent_id)


def detach(conn: Conn, organization_id: str, agent_id: str, block_id: str) -> None:
    if block_store.get(conn, organization_id, block_id) is None:
        raise NotFound(f"block {block_id} not found")
    if not block_store.detach(conn, agent_id, block_id):
        raise NotFound(f"block {block_id} is not attached to agent {agent_id}")
    agent_store.touch(conn, agent_id)
