"""Creating, reading, updating and deleting agents together with their memory blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from o.agent import revisions
from o.agent.tool_rules import ToolRules
from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import blocks as memory_blocks
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import tools as tool_store
from o.store.db import Conn
from o.store.pages import Page
from o.tools import catalog
from o.tools.builtin import BUILTINS
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


@dataclass
class AgentView:
    """An agent row with what the API shows beside it."""

    agent: dict[str, Any]
    blocks: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    tool_env: list[dict[str, Any]] = field(default_factory=list)


def create(conn: Conn, organization_id: str, spec: AgentSpec, *, secrets: SecretBox | None = None) -> AgentView:
    """The new agent; ``secrets`` seals its tool variables (needed only when the spec has some)."""
    labels = [b["label"] for b in spec.memory_blocks]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"memory_blocks labels must be unique, got {labels}")
    # The loop reads the rules on every step: a rule it cannot read would fail every send, not this one.
    ToolRules.parse(spec.tool_rules)
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
            "embedding_config": spec.embedding_config or DEFAULT_EMBEDDING_CONFIG,
            "tool_rules": spec.tool_rules,
            "tags": spec.tags,
            "metadata": spec.metadata,
        },
    )
    for block_spec in spec.memory_blocks:
        block = memory_blocks.create(conn, organization_id, block_spec)
        block_store.attach(conn, agent["id"], block)
    for block_id in spec.block_ids:
        memory_blocks.attach(conn, organization_id, agent["id"], block_id)
    _set_tools(conn, organization_id, agent["id"], spec.tool_ids, spec.tool_names)
    if spec.tool_env:
        catalog.set_agent_env(conn, organization_id, agent["id"], spec.tool_env, secrets=_needed(secrets))
    _record_revision(conn, organization_id, agent["id"])
    return get(conn, organization_id, agent["id"])


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
    """Attach tools by id and by name (Letta's ``tool_ids`` / ``tools``). Built-in names need no row:
    every agent is offered the built-ins of its type."""
    wanted = list(tool_ids)
    for name in tool_names:
        row = tool_store.get_by_name(conn, organization_id, name)
        if row is not None:
            wanted.append(row["id"])
        elif name not in BUILTINS:
            raise NotFound(f"tool named {name!r} not found")
    if replace:
        for tool in tool_store.for_agent(conn, agent_id):
            if tool["id"] not in wanted:
                catalog.detach(conn, organization_id, agent_id, tool["id"])
    for tool_id in dict.fromkeys(wanted):
        catalog.attach(conn, organization_id, agent_id, tool_id)


def get(conn: Conn, organization_id: str, agent_id: str) -> AgentView:
    found = agent_store.with_related(conn, organization_id, [agent_id])
    if agent_id not in found:
        raise NotFound(f"agent {agent_id} not found")
    return _view(found[agent_id])


def require(conn: Conn, organization_id: str, agent_id: str, *, for_update: bool = False) -> dict[str, Any]:
    """The agent row, or NotFound: also how another organization's ids stay invisible."""
    return agent_store.require(conn, organization_id, agent_id, for_update=for_update)


def list_agents(conn: Conn, organization_id: str, page: Page, **filters: Any) -> list[AgentView]:
    ids = [a["id"] for a in agent_store.list_page(conn, organization_id, page, **filters)]
    found = agent_store.with_related(conn, organization_id, ids) if ids else {}
    return [_view(found[i]) for i in ids if i in found]


def _needed(secrets: SecretBox | None) -> SecretBox:
    if secrets is None:
        raise TypeError("tool variables are sealed: pass the process's SecretBox as secrets=")
    return secrets


def update(
    conn: Conn, organization_id: str, agent_id: str, changes: dict[str, Any], *, secrets: SecretBox | None = None
) -> AgentView:
    block_ids = changes.pop("block_ids", None)
    tool_ids = changes.pop("tool_ids", None)
    tool_env = changes.pop("tool_env", None)
    if "tool_rules" in changes:
        ToolRules.parse(changes["tool_rules"])
    require(conn, organization_id, agent_id, for_update=True)
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


def delete(conn: Conn, organization_id: str, agent_id: str) -> None:
    if not agent_store.delete(conn, organization_id, agent_id):
        raise NotFound(f"agent {agent_id} not found")


def _view(row: dict[str, Any]) -> AgentView:
    blocks = row.pop("related_blocks")
    tools = row.pop("related_tools")
    env = row.pop("related_env")
    return AgentView(row, blocks, tools, env)
