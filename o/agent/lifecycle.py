"""Creating, reading, updating and deleting agents together with their memory blocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from o.agent import revisions
from o.agent.tool_rules import ToolRules
from o.agent.views import AgentView, get, require
from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import archival
from o.memory import blocks as memory_blocks
from o.memory.embeddings import EmbeddingConfig
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import messages as message_store
from o.store import tools as tool_store
from o.store.db import Conn
from o.tools import base as base_tools
from o.tools import catalog
from o.tools.secrets.envelope import SecretBox

DEFAULT_SYSTEM = (
    "You are a helpful assistant with persistent memory. Your core memory blocks are shown below; "
    "keep them current with your memory tools. Use send_message to reply to the user."
)

# The local ONNX model is a Hugging Face sentence-transformers model: "hugging-face" is the
# endpoint type among Letta's that says so (Letta has no "local"; the SDK refuses one).
DEFAULT_EMBEDDING_CONFIG: dict[str, Any] = {
    "embedding_endpoint_type": "hugging-face",
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_dim": 384,
    "embedding_chunk_size": 300,
}


# What a revision captures (o/agent/revisions.py): an API edit of these makes a new one.
EVOLVABLE = {"system", "llm_config", "tool_rules", "block_ids", "tool_ids"}

# Refuses (4xx) an llm_config or embedding_config the process would refuse to call (an endpoint the
# operator does not allow, a model the local embedder does not serve): ``Engine.check_configs``.
ConfigCheck = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]


@dataclass(frozen=True)
class InitialMessage:
    """One message of Letta's ``initial_message_sequence``: stored in context at creation."""

    role: str  # "user" or "assistant"
    text: str
    name: str | None = None
    otid: str | None = None
    sender_id: str | None = None


@dataclass
class AgentSpec:
    name: str
    system: str | None = None
    description: str | None = None
    agent_type: str = "memgpt_v2_agent"
    llm_config: dict[str, Any] = field(default_factory=dict)
    embedding_config: dict[str, Any] | None = None
    memory_blocks: list[dict[str, Any]] = field(default_factory=list)
    block_ids: list[str] = field(default_factory=list)
    tool_rules: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    tool_ids: list[str] = field(default_factory=list)
    tool_names: list[str] = field(default_factory=list)
    tool_env: dict[str, str] | None = None
    timezone: str = "UTC"
    enable_sleeptime: bool = True
    message_buffer_autoclear: bool = False
    # Letta's per-agent file caps; None: the defaults (o.memory.files.views)
    max_files_open: int | None = None
    per_file_view_window_char_limit: int | None = None
    # Letta's include_base_tools: the base tools of the agent's type are attached on creation
    include_base_tools: bool = True
    # None: the agent starts with no messages; a list (even empty): exactly these start its context
    initial_messages: list[InitialMessage] | None = None


def create(
    conn: Conn,
    organization_id: str,
    spec: AgentSpec,
    *,
    secrets: SecretBox | None = None,
    check: ConfigCheck | None = None,
) -> AgentView:
    """The new agent; ``secrets`` seals its tool variables (needed only when the spec has some);
    ``check`` refuses configs the process would not call. Everything is checked before the first write."""
    labels = [b["label"] for b in spec.memory_blocks]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"memory_blocks labels must be unique, got {labels}")
    # The loop reads the rules on every step: a rule it cannot read would fail every send, not this one.
    ToolRules.parse(spec.tool_rules)
    check_timezone(spec.timezone)
    embedding = spec.embedding_config or DEFAULT_EMBEDDING_CONFIG
    _check_embedding_config(embedding)
    if check is not None:
        check(spec.llm_config, embedding)
    agent = agent_store.insert(
        conn,
        {
            "id": new_id("agent"),
            "organization_id": organization_id,
            "name": spec.name,
            "description": spec.description,
            "agent_type": spec.agent_type,
            "system": spec.system if spec.system is not None else DEFAULT_SYSTEM,
            "llm_config": spec.llm_config,
            "embedding_config": embedding,
            "tool_rules": spec.tool_rules,
            "tags": spec.tags,
            "metadata": spec.metadata,
            "timezone": spec.timezone,
            "enable_sleeptime": spec.enable_sleeptime,
            "message_buffer_autoclear": spec.message_buffer_autoclear,
            **_file_caps(spec),
        },
    )
    for block_spec in spec.memory_blocks:
        block = memory_blocks.create(conn, organization_id, block_spec)
        block_store.attach(conn, agent["id"], block)
    for block_id in spec.block_ids:
        memory_blocks.attach(conn, organization_id, agent["id"], block_id)
    given = base_tools.default_ids(conn, organization_id, spec.agent_type) if spec.include_base_tools else []
    _set_tools(conn, organization_id, agent["id"], [*given, *spec.tool_ids], spec.tool_names)
    if spec.tool_env:
        catalog.set_agent_env(conn, organization_id, agent["id"], spec.tool_env, secrets=_needed(secrets))
    if spec.initial_messages:
        _store_initial_messages(conn, agent, spec.initial_messages)
    _record_revision(conn, organization_id, agent["id"])
    return get(conn, organization_id, agent["id"])


def check_timezone(name: str) -> None:
    """An IANA time zone name ("Europe/Paris"), or InvalidInput naming the field."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"timezone {name!r} is not an IANA time zone name (e.g. 'UTC', 'America/New_York')", field="timezone"
        ) from None


def _check_embedding_config(raw: dict[str, Any]) -> None:
    try:
        EmbeddingConfig.model_validate(raw)
    except ValueError as exc:
        raise InvalidInput(f"embedding_config is not usable: {exc}", field="embedding_config") from None


def _store_initial_messages(conn: Conn, agent: dict[str, Any], messages: list[InitialMessage]) -> None:
    """Letta's ``initial_message_sequence``: the messages the agent's context starts with, in order."""
    message_store.insert_many(
        conn,
        [
            {
                "id": new_id("message"),
                "organization_id": agent["organization_id"],
                "agent_id": agent["id"],
                "role": m.role,
                "content": [{"type": "text", "text": m.text}],
                "text": m.text,
                "name": m.name,
                "otid": m.otid,
                "sender_id": m.sender_id,
                "in_context": True,
                "metadata": {"kind": "initial"},
            }
            for m in messages
        ],
    )


def _record_revision(conn: Conn, organization_id: str, agent_id: str) -> None:
    """Revision 1 at creation; later, a user's edit of what evolution may change is a revision too
    (author "user"), recorded at once so the next run reports it and feedback is credited to it."""
    revisions.current(conn, organization_id, agent_id)


def _set_tools(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    tool_ids: list[str],
    tool_names: list[str],
    *,
    replace: bool = False,
) -> None:
    """Attach tools by id and by name (Letta's ``tool_ids`` / ``tools``; base tools have records too)."""
    wanted = list(tool_ids)
    if tool_names:
        base_tools.ensure(conn, organization_id)
    for name in tool_names:
        row = tool_store.get_by_name(conn, organization_id, name)
        if row is None:
            raise NotFound(f"tool named {name!r} not found")
        wanted.append(row["id"])
    if replace:
        for tool in tool_store.for_agent(conn, agent_id):
            if tool["id"] not in wanted:
                catalog.detach(conn, organization_id, agent_id, tool["id"])
    for tool_id in dict.fromkeys(wanted):
        catalog.attach(conn, organization_id, agent_id, tool_id)


def _needed(secrets: SecretBox | None) -> SecretBox:
    if secrets is None:
        raise TypeError("tool variables are sealed: pass the process's SecretBox as secrets=")
    return secrets


def update(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    changes: dict[str, Any],
    *,
    secrets: SecretBox | None = None,
    check: ConfigCheck | None = None,
) -> AgentView:
    block_ids = changes.pop("block_ids", None)
    tool_ids = changes.pop("tool_ids", None)
    tool_env = changes.pop("tool_env", None)
    if "tool_rules" in changes:
        ToolRules.parse(changes["tool_rules"])
    if "timezone" in changes:
        check_timezone(changes["timezone"])
    row = require(conn, organization_id, agent_id, for_update=True)
    _check_config_changes(conn, row, changes, check)
    if tool_ids is not None:
        _set_tools(conn, organization_id, agent_id, tool_ids, [], replace=True)
    if tool_env is not None:
        catalog.set_agent_env(conn, organization_id, agent_id, tool_env, secrets=_needed(secrets))
    if changes:
        agent_store.update(conn, organization_id, agent_id, changes)
    if block_ids is not None:
        current = {b["id"] for b in block_store.for_agents(conn, [agent_id])[agent_id]}
        for block_id in current - set(block_ids):
            memory_blocks.detach(conn, organization_id, agent_id, block_id)
        for block_id in block_ids:
            if block_id not in current:
                memory_blocks.attach(conn, organization_id, agent_id, block_id)
    if EVOLVABLE & (
        set(changes)
        | ({"block_ids"} if block_ids is not None else set())
        | ({"tool_ids"} if tool_ids is not None else set())
    ):
        _record_revision(conn, organization_id, agent_id)
    return get(conn, organization_id, agent_id)


def _check_config_changes(
    conn: Conn, agent: dict[str, Any], changes: dict[str, Any], check: ConfigCheck | None
) -> None:
    """A new llm_config or embedding_config is checked like one given at creation; a new embedding
    model must make vectors the agent's archival memory can be compared with."""
    llm = changes.get("llm_config")
    embedding = changes.get("embedding_config")
    if embedding is not None:
        _check_embedding_config(embedding)
        archival.check_compatible(conn, agent["id"], EmbeddingConfig.model_validate(embedding))
    if check is not None and (llm is not None or embedding is not None):
        check(llm, embedding)


def delete(conn: Conn, organization_id: str, agent_id: str) -> None:
    if not agent_store.delete(conn, organization_id, agent_id):
        raise NotFound(f"agent {agent_id} not found")


def _file_caps(spec: AgentSpec) -> dict[str, int]:
    """The file caps the spec sets (the columns' defaults otherwise)."""
    caps = {
        "max_files_open": spec.max_files_open,
        "per_file_view_window_char_limit": spec.per_file_view_window_char_limit,
    }
    return {k: v for k, v in caps.items() if v is not None}
