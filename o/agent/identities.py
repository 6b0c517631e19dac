"""Identities: the people and organisations an organization's agents serve (Letta's identities).

An identity is unique in its organization by ``identifier_key`` (an id from the caller's own system),
carries typed properties, and may be attached to agents and share blocks: attaching an identity to an
agent also attaches the identity's blocks to it, so every agent serving the same user reads and edits
one shared block about them; detaching takes those blocks off again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from o.errors import Conflict, InvalidInput, NotFound
from o.ids import new_id
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import identities as store
from o.store.db import Conn

PROPERTY_TYPES = {"string": (str,), "number": (int, float), "boolean": (bool,), "json": (dict,)}


def check_properties(properties: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The properties as stored; InvalidInput for a value not of its declared type, or a key given twice."""
    seen: set[str] = set()
    for prop in properties:
        kind, value = prop["type"], prop["value"]
        allowed = PROPERTY_TYPES[kind]
        if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, allowed):
            raise InvalidInput(f"property {prop['key']!r} is declared {kind} but its value is {type(value).__name__}")
        if prop["key"] in seen:
            raise InvalidInput(f"property {prop['key']!r} is given twice")
        seen.add(prop["key"])
    return [dict(p) for p in properties]


def require(conn: Conn, organization_id: str, identity_id: str, *, for_update: bool = False) -> dict[str, Any]:
    row = store.get(conn, organization_id, identity_id, for_update=for_update)
    if row is None:
        raise NotFound(f"identity {identity_id} not found")
    return row


def _check_members(
    conn: Conn, organization_id: str, agent_ids: Sequence[str] | None, block_ids: Sequence[str] | None
) -> None:
    for table, ids in (("agents", agent_ids), ("blocks", block_ids)):
        unknown = store.missing(conn, table, organization_id, ids) if ids else []
        if unknown:
            raise NotFound(f"{table[:-1]} {unknown[0]} not found")


def _set_members(
    conn: Conn, organization_id: str, identity_id: str, agent_ids: Sequence[str] | None, block_ids: Sequence[str] | None
) -> None:
    """Letta's (deprecated) ``agent_ids`` / ``block_ids`` of an identity: blocks first, so that agents attached
    here get the identity's blocks as :func:`attach` gives them."""
    if block_ids is not None:
        store.set_blocks(conn, identity_id, list(dict.fromkeys(block_ids)))
    if agent_ids is None:
        return
    current = set(require(conn, organization_id, identity_id)["agent_ids"])
    for agent_id in sorted(current - set(agent_ids)):
        detach(conn, organization_id, agent_id, identity_id)
    for agent_id in dict.fromkeys(agent_ids):
        if agent_id not in current:
            attach(conn, organization_id, agent_id, identity_id)


def create(conn: Conn, organization_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    _check_members(conn, organization_id, spec.get("agent_ids"), spec.get("block_ids"))
    identity_id = new_id("identity")
    row = {
        "id": identity_id,
        "organization_id": organization_id,
        "identifier_key": spec["identifier_key"],
        "name": spec["name"],
        "identity_type": spec["identity_type"],
        "project_id": spec.get("project_id"),
        "properties": check_properties(spec.get("properties") or []),
    }
    if not store.insert(conn, row):
        raise Conflict(f"an identity with identifier_key {spec['identifier_key']!r} exists already")
    _set_members(conn, organization_id, identity_id, spec.get("agent_ids"), spec.get("block_ids"))
    return require(conn, organization_id, identity_id)


def update(conn: Conn, organization_id: str, identity_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    require(conn, organization_id, identity_id, for_update=True)
    agent_ids, block_ids = changes.pop("agent_ids", None), changes.pop("block_ids", None)
    _check_members(conn, organization_id, agent_ids, block_ids)
    if "properties" in changes:
        changes["properties"] = check_properties(changes["properties"] or [])
    if not store.update(conn, identity_id, changes):
        raise Conflict(f"an identity with identifier_key {changes['identifier_key']!r} exists already")
    _set_members(conn, organization_id, identity_id, agent_ids, block_ids)
    return require(conn, organization_id, identity_id)


def upsert(conn: Conn, organization_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create the identity with ``spec['identifier_key']``, or replace the one that has it."""
    existing = store.by_key(conn, organization_id, spec["identifier_key"])
    if existing is None:
        return create(conn, organization_id, spec)
    changes = {k: spec.get(k) for k in ("name", "identity_type", "project_id")}
    changes["properties"] = spec.get("properties") or []
    for members in ("agent_ids", "block_ids"):
        if spec.get(members) is not None:
            changes[members] = spec[members]
    return update(conn, organization_id, existing["id"], changes)


def upsert_properties(
    conn: Conn, organization_id: str, identity_id: str, properties: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Set these properties (by key), keeping the identity's others."""
    identity = require(conn, organization_id, identity_id, for_update=True)
    given = check_properties(properties)
    keys = {p["key"] for p in given}
    merged = [p for p in identity["properties"] if p["key"] not in keys] + given
    store.update(conn, identity_id, {"properties": merged})
    return require(conn, organization_id, identity_id)


def delete(conn: Conn, organization_id: str, identity_id: str) -> None:
    if not store.delete(conn, organization_id, identity_id):
        raise NotFound(f"identity {identity_id} not found")


def _shared_blocks(conn: Conn, organization_id: str, identity: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = [block_store.get(conn, organization_id, b) for b in identity["block_ids"]]
    return [b for b in blocks if b is not None]


def attach(conn: Conn, organization_id: str, agent_id: str, identity_id: str) -> None:
    """Attach an identity to an agent, and the identity's blocks with it."""
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    identity = require(conn, organization_id, identity_id, for_update=True)
    for block in _shared_blocks(conn, organization_id, identity):
        owner = block_store.attached_label_owner(conn, agent_id, block["label"])
        if owner is not None and owner != block["id"]:
            raise Conflict(
                f"agent {agent_id} has its own {block['label']!r} block; identity {identity_id} shares block "
                f"{block['id']} with that label"
            )
        block_store.attach(conn, agent_id, block)
    store.attach_agent(conn, identity_id, agent_id)
    agent_store.touch(conn, agent_id)


def detach(conn: Conn, organization_id: str, agent_id: str, identity_id: str) -> None:
    """Detach an identity from an agent, and the blocks it shares with it."""
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    identity = require(conn, organization_id, identity_id, for_update=True)
    if not store.detach_agent(conn, identity_id, agent_id):
        raise NotFound(f"identity {identity_id} is not attached to agent {agent_id}")
    for block_id in identity["block_ids"]:
        block_store.detach(conn, agent_id, block_id)
    agent_store.touch(conn, agent_id)


def set_for_agent(conn: Conn, organization_id: str, agent_id: str, identity_ids: Sequence[str]) -> None:
    """Make ``identity_ids`` the agent's identities (agent create/update's ``identity_ids``)."""
    wanted = list(dict.fromkeys(identity_ids))
    for identity_id in wanted:
        require(conn, organization_id, identity_id)
    current = {i["id"] for i in store.for_agent(conn, agent_id)}
    for identity_id in sorted(current - set(wanted)):
        detach(conn, organization_id, agent_id, identity_id)
    for identity_id in wanted:
        if identity_id not in current:
            attach(conn, organization_id, agent_id, identity_id)


def list_identities(conn: Conn, organization_id: str, **filters: Any) -> list[dict[str, Any]]:
    return store.list_page(conn, organization_id, **filters)
