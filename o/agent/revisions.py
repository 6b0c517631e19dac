"""Revisions: the evolvable part of an agent's configuration, frozen, numbered and diffed.

A revision's ``config`` holds exactly what evolution may change — the system text, the block
layout (labels, limits, descriptions, read-only flags; never the values, which are memory),
tool ids and tool rules, and the model settings. Revision 1 is taken lazily from the agent's
current configuration; a configuration changed through the plain agent API since the last
revision is captured as a new user revision the next time anyone asks which revision runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import blocks as memory_blocks
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import revisions as revision_store
from o.store import tools as tool_store
from o.store.db import Conn

EVOLVABLE_KEYS = ("system", "blocks", "tool_ids", "tool_rules", "llm_config")
BLOCK_KEYS = ("label", "limit", "description", "read_only")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()


def snapshot(conn: Conn, agent: dict[str, Any]) -> dict[str, Any]:
    """The agent's current evolvable configuration."""
    blocks = block_store.for_agents(conn, [agent["id"]])[agent["id"]]
    tool_ids = tool_store.attached_ids(conn, agent["id"])
    return {
        "system": agent["system"],
        "blocks": [
            {
                "label": b["label"],
                "limit": b["char_limit"],
                "description": b["description"],
                "read_only": bool(b["read_only"]),
            }
            for b in sorted(blocks, key=lambda b: b["label"])
        ],
        "tool_ids": tool_ids,
        "tool_rules": agent["tool_rules"] or [],
        "llm_config": agent["llm_config"] or {},
    }


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a (proposed) configuration and put it in canonical form; raises InvalidInput."""
    _require_evolvable_keys(config)
    if not isinstance(config["system"], str):
        raise InvalidInput("system must be a string")
    blocks = _normalize_blocks(config["blocks"])
    _check_tools_and_model(config)
    return {
        "system": config["system"],
        "blocks": blocks,
        "tool_ids": sorted(set(config["tool_ids"])),
        "tool_rules": config["tool_rules"],
        "llm_config": config["llm_config"],
    }


def _require_evolvable_keys(config: dict[str, Any]) -> None:
    unknown = set(config) - set(EVOLVABLE_KEYS)
    if unknown:
        raise InvalidInput(f"a revision may only change {list(EVOLVABLE_KEYS)}; got {sorted(unknown)}")
    missing = set(EVOLVABLE_KEYS) - set(config)
    if missing:
        raise InvalidInput(f"a revision needs all of {list(EVOLVABLE_KEYS)}; missing {sorted(missing)}")


def _normalize_blocks(raw: Any) -> list[dict[str, Any]]:
    """The block layout, each block in canonical form, sorted by label; labels must be unique."""
    if not isinstance(raw, list):
        raise InvalidInput("blocks must be a list")
    blocks = [_normalize_block(b) for b in raw]
    labels = [b["label"] for b in blocks]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"block labels must be unique, got {labels}")
    return sorted(blocks, key=lambda b: b["label"])


def _normalize_block(b: Any) -> dict[str, Any]:
    if not isinstance(b, dict) or not isinstance(b.get("label"), str) or not b["label"].strip():
        raise InvalidInput(f"each block needs a non-empty label, got {b!r}")
    extra = set(b) - set(BLOCK_KEYS)
    if extra:
        raise InvalidInput(f"block {b['label']!r}: only {list(BLOCK_KEYS)} may be set, got {sorted(extra)}")
    limit = memory_blocks.DEFAULT_LIMIT if b.get("limit") is None else b["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"block {b['label']!r}: limit must be a positive integer")
    return {
        "label": b["label"],
        "limit": limit,
        "description": b.get("description"),
        "read_only": bool(b.get("read_only", False)),
    }


def _check_tools_and_model(config: dict[str, Any]) -> None:
    if not isinstance(config["tool_ids"], list) or not all(isinstance(t, str) for t in config["tool_ids"]):
        raise InvalidInput("tool_ids must be a list of tool ids")
    if not isinstance(config["tool_rules"], list) or not all(isinstance(r, dict) for r in config["tool_rules"]):
        raise InvalidInput("tool_rules must be a list of objects")
    if not isinstance(config["llm_config"], dict) or not config["llm_config"].get("model"):
        raise InvalidInput("llm_config must be an object naming a model")


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``old`` to ``new``, readable by people and by the agent itself."""
    if old is None:
        return {}
    changes = {
        "system": _system_diff(old["system"], new["system"]),
        "blocks": _blocks_diff(old["blocks"], new["blocks"]),
        "tool_ids": _tool_ids_diff(old["tool_ids"], new["tool_ids"]),
        "tool_rules": _tool_rules_diff(old["tool_rules"], new["tool_rules"]),
        "llm_config": _llm_config_diff(old["llm_config"], new["llm_config"]),
    }
    return {key: change for key, change in changes.items() if change is not None}


def _system_diff(old: str, new: str) -> str | None:
    if old == new:
        return None
    return "\n".join(
        difflib.unified_diff(old.splitlines(), new.splitlines(), "system (before)", "system (after)", lineterm="")
    )


def _blocks_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any] | None:
    old_blocks = {b["label"]: b for b in old}
    new_blocks = {b["label"]: b for b in new}
    changed = {
        label: _changed_keys(old_blocks[label], new_blocks[label], BLOCK_KEYS)
        for label in sorted(set(old_blocks) & set(new_blocks))
    }
    blocks = {
        "added": [new_blocks[label] for label in sorted(set(new_blocks) - set(old_blocks))],
        "removed": sorted(set(old_blocks) - set(new_blocks)),
        "changed": {label: keys for label, keys in changed.items() if keys},
    }
    blocks = {kind: items for kind, items in blocks.items() if items}
    return blocks or None


def _changed_keys(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """``{key: {"from": ..., "to": ...}}`` for each of ``keys`` whose value differs."""
    return {k: {"from": old.get(k), "to": new.get(k)} for k in keys if old.get(k) != new.get(k)}


def _tool_ids_diff(old: list[str], new: list[str]) -> dict[str, Any] | None:
    old_tools, new_tools = set(old), set(new)
    if old_tools == new_tools:
        return None
    return {"added": sorted(new_tools - old_tools), "removed": sorted(old_tools - new_tools)}


def _tool_rules_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any] | None:
    return None if canonical(old) == canonical(new) else {"from": old, "to": new}


def _llm_config_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    return _changed_keys(old, new, sorted(set(old) | set(new))) or None


def describe_diff(d: dict[str, Any]) -> str:
    """One line per change, for archival memory and the CLI."""
    if not d:
        return "no change"
    lines = []
    if "system" in d:
        lines.append("system prompt:\n" + d["system"])
    for label in d.get("blocks", {}).get("added", []):
        lines.append(f"block added: {label['label']} (limit {label['limit']})")
    for label in d.get("blocks", {}).get("removed", []):
        lines.append(f"block removed: {label}")
    for label, changes in d.get("blocks", {}).get("changed", {}).items():
        lines.append(f"block {label}: " + ", ".join(f"{k} {v['from']!r} -> {v['to']!r}" for k, v in changes.items()))
    if "tool_ids" in d:
        lines.append(f"tools added {d['tool_ids']['added']}, removed {d['tool_ids']['removed']}")
    if "tool_rules" in d:
        lines.append("tool rules changed")
    for k, v in d.get("llm_config", {}).items():
        lines.append(f"llm_config.{k}: {v['from']!r} -> {v['to']!r}")
    return "\n".join(lines)


def _block_ids(conn: Conn, agent_id: str) -> dict[str, str]:
    return {b["label"]: b["id"] for b in block_store.for_agents(conn, [agent_id])[agent_id]}


def _create(
    conn: Conn,
    agent: dict[str, Any],
    config: dict[str, Any],
    parent: dict[str, Any] | None,
    *,
    author: str,
    rationale: str,
    evolution_id: str | None = None,
    block_ids: dict[str, str] | None = None,
) -> dict[str, Any]:
    return revision_store.insert(
        conn,
        {
            "id": new_id("revision"),
            "organization_id": agent["organization_id"],
            "agent_id": agent["id"],
            "parent": parent["number"] if parent else None,
            "config": config,
            "config_hash": config_hash(config),
            "diff": diff(parent["config"] if parent else None, config),
            "block_ids": block_ids if block_ids is not None else _block_ids(conn, agent["id"]),
            "author": author,
            "rationale": rationale,
            "evolution_id": evolution_id,
        },
    )


def current(conn: Conn, organization_id: str, agent_id: str) -> dict[str, Any]:
    """The revision the agent runs, taking revision 1 (or a drift revision) first when needed."""
    agent = agent_store.get(conn, organization_id, agent_id, for_update=True)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    live = snapshot(conn, agent)
    if agent.get("revision") is not None:
        rev = revision_store.get(conn, agent_id, agent["revision"])
        if rev is not None and rev["config_hash"] == config_hash(live):
            if (agent["metadata"] or {}).get("revision") != rev["number"]:
                # a metadata PATCH replaced the marker; the pointer column is the truth
                revision_store.set_agent_revision(conn, agent_id, rev["number"])
            return rev
        parent = rev
        rationale = "configuration changed through the agent API"
    else:
        parent = None
        rationale = "initial configuration"
    rev = _create(conn, agent, live, parent, author="user", rationale=rationale)
    revision_store.set_agent_revision(conn, agent_id, rev["number"])
    return rev


def get(conn: Conn, organization_id: str, agent_id: str, number: int) -> dict[str, Any]:
    current(conn, organization_id, agent_id)
    rev = revision_store.get(conn, agent_id, number)
    if rev is None:
        raise NotFound(f"agent {agent_id} has no revision {number}")
    return rev


def list_revisions(conn: Conn, organization_id: str, agent_id: str, **page: Any) -> list[dict[str, Any]]:
    current(conn, organization_id, agent_id)
    return revision_store.list_for_agent(conn, agent_id, **page)


def propose(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    config: dict[str, Any],
    *,
    author: str,
    rationale: str,
    evolution_id: str | None = None,
) -> dict[str, Any]:
    """Store ``config`` as a new revision (not applied); its parent is the revision running now."""
    parent = current(conn, organization_id, agent_id)
    config = normalize(config)
    check_applicable(conn, organization_id, agent_id, config)
    agent = agent_store.get(conn, organization_id, agent_id)
    assert agent is not None
    return _create(conn, agent, config, parent, author=author, rationale=rationale, evolution_id=evolution_id)


def check_applicable(conn: Conn, organization_id: str, agent_id: str, config: dict[str, Any]) -> None:
    """Refuse a configuration that cannot be applied: unknown tools, a limit below a block's current value."""
    if config["tool_ids"]:
        known = tool_store.known_ids(conn, organization_id, config["tool_ids"])
        unknown = sorted(set(config["tool_ids"]) - known)
        if unknown:
            raise InvalidInput(f"unknown tool ids: {unknown}")
    present = {b["label"]: b for b in block_store.for_agents(conn, [agent_id])[agent_id]}
    for b in config["blocks"]:
        have = present.get(b["label"])
        if have is not None and len(have["value"]) > b["limit"]:
            raise InvalidInput(
                f"block {b['label']!r} holds {len(have['value'])} characters, more than the new limit {b['limit']}"
            )


def apply(conn: Conn, organization_id: str, agent_id: str, number: int) -> dict[str, Any]:
    """Make revision ``number`` the one the agent runs: its row, blocks layout and tools follow the config."""
    agent = agent_store.get(conn, organization_id, agent_id, for_update=True)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    rev = revision_store.get(conn, agent_id, number)
    if rev is None:
        raise NotFound(f"agent {agent_id} has no revision {number}")
    config = rev["config"]
    check_applicable(conn, organization_id, agent_id, config)
    agent_store.update(
        conn,
        organization_id,
        agent_id,
        {
            "system": config["system"],
            "tool_rules": config["tool_rules"],
            "llm_config": config["llm_config"],
        },
    )
    _lay_out_blocks(conn, organization_id, agent_id, rev)
    tool_store.set_attached(conn, agent_id, config["tool_ids"])
    revision_store.set_agent_revision(conn, agent_id, number)
    return rev


def _lay_out_blocks(conn: Conn, organization_id: str, agent_id: str, rev: dict[str, Any]) -> None:
    """Attach exactly the revision's blocks, with its limits, descriptions and read-only flags."""
    present = {b["label"]: b for b in block_store.for_agents(conn, [agent_id])[agent_id]}
    wanted = {b["label"]: b for b in rev["config"]["blocks"]}
    for label, block in present.items():
        if label not in wanted:
            _detach(conn, organization_id, agent_id, block, rev["number"])
    for label, spec in wanted.items():
        have = present.get(label)
        if have is None:
            have = _attach(conn, organization_id, agent_id, spec, rev["block_ids"].get(label))
        changes = {
            k: v
            for k, v in (
                ("char_limit", spec["limit"]),
                ("description", spec["description"]),
                ("read_only", spec["read_only"]),
            )
            if have.get(k) != v
        }
        if changes:
            memory_blocks.update(conn, organization_id, have["id"], changes)


def _detach(conn: Conn, organization_id: str, agent_id: str, block: dict[str, Any], number: int) -> None:
    # the block (and its value) survives detached, so a later rollback can attach it again
    memory_blocks.update(
        conn,
        organization_id,
        block["id"],
        {"metadata": {**(block["metadata"] or {}), "detached_by_revision": number, "detached_from": agent_id}},
    )
    block_store.detach(conn, agent_id, block["id"])


def _attach(
    conn: Conn, organization_id: str, agent_id: str, spec: dict[str, Any], block_id: str | None
) -> dict[str, Any]:
    """The block that carries ``spec``'s label, attached: the one it had before when it still fits, else a new one."""
    label = spec["label"]
    old = _reusable_block(conn, organization_id, agent_id, label, block_id)
    if old is not None and len(old["value"]) <= spec["limit"]:
        meta = {k: v for k, v in (old["metadata"] or {}).items() if k not in ("detached_by_revision", "detached_from")}
        block = memory_blocks.update(conn, organization_id, old["id"], {"metadata": meta})
    else:
        block = memory_blocks.create(conn, organization_id, {"label": label, "limit": spec["limit"]})
    block_store.attach(conn, agent_id, block)
    return block


def _reusable_block(
    conn: Conn, organization_id: str, agent_id: str, label: str, block_id: str | None
) -> dict[str, Any] | None:
    """The block that carried ``label`` for this agent before, if it still exists with that label."""
    if block_id is not None:
        block = block_store.get(conn, organization_id, block_id)
        if block is not None and block["label"] == label:
            return block
    return block_store.last_detached(conn, organization_id, agent_id, label)


def rollback(conn: Conn, organization_id: str, agent_id: str, number: int, *, rationale: str | None = None) -> dict:
    """A new user revision equal to revision ``number``, applied."""
    parent = current(conn, organization_id, agent_id)
    target = revision_store.get(conn, agent_id, number)
    if target is None:
        raise NotFound(f"agent {agent_id} has no revision {number}")
    agent = agent_store.get(conn, organization_id, agent_id)
    assert agent is not None
    rev = _create(
        conn,
        agent,
        target["config"],
        parent,
        author="user",
        rationale=rationale or f"rollback to revision {number}",
        block_ids={**_block_ids(conn, agent_id), **target["block_ids"]},
    )
    return apply(conn, organization_id, agent_id, rev["number"])
