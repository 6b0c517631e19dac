"""The tools an agent may call this step, and how a call is carried out.

Built-ins (``o.tools.builtin``) run in-process inside the transaction that stores their
result. User tools (Python source in the ``tools`` table, attached through
``agent_tools``) run through a :class:`ToolExecutor`, by default the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from o.llm.types import ToolSpec
from o.store.db import Database
from o.tools import builtin
from o.tools.sandbox.base import Sandbox, ToolResult
from o.tools.secrets.envelope import SecretBox

HEARTBEAT = "request_heartbeat"
HEARTBEAT_SCHEMA = {
    "type": "boolean",
    "description": "Request an immediate heartbeat after function execution. Set to `True` if you want to send a "
    "follow-up message or run a follow-up tool.",
}


@dataclass(frozen=True)
class AgentTool:
    name: str
    description: str
    parameters: dict[str, Any]
    # None for a built-in; the tools row for a user tool
    row: dict[str, Any] | None = None

    @property
    def is_builtin(self) -> bool:
        return self.row is None

    def spec(self) -> ToolSpec:
        params = dict(self.parameters)
        params["properties"] = {**params.get("properties", {}), HEARTBEAT: HEARTBEAT_SCHEMA}
        params.setdefault("type", "object")
        return ToolSpec(self.name, self.description, params)


class ToolExecutor(Protocol):
    """Runs a user-defined tool somewhere safe and reports what happened."""

    def run(self, tool: dict[str, Any], args: dict[str, Any], *, organization_id: str, agent_id: str) -> ToolResult: ...


class SandboxExecutor:
    """User tools through ``o.tools.execute.run_tool`` in a sandbox (a local process jail, or a
    Lambda in AWS), with the agent's tool variables, which ``secrets`` opens for the run."""

    def __init__(self, db: Database, sandbox: Sandbox, secrets: SecretBox) -> None:
        self.db = db
        self.sandbox = sandbox
        self.secrets = secrets

    def run(self, tool: dict[str, Any], args: dict[str, Any], *, organization_id: str, agent_id: str) -> ToolResult:
        from o.tools.execute import run_tool

        return run_tool(self.db, organization_id, agent_id, tool["name"], args, self.sandbox, secrets=self.secrets)


def agent_tools(agent: dict[str, Any], attached: list[dict[str, Any]]) -> list[AgentTool]:
    """Built-ins for the agent's type, then its ``attached`` user tools; an attached tool named like
    a built-in is the built-in (Letta clients attach base tools by id). ``base_tools`` (set by Letta's
    include_base_tools=false) replaces the built-ins of the type."""
    chosen = agent.get("base_tools")
    names = list(chosen if chosen is not None else builtin.default_tools(agent["agent_type"]))
    out: list[AgentTool] = []
    for row in attached:
        if row["name"] in builtin.BUILTINS and row["name"] not in names:
            names.append(row["name"])
    for name in names:
        b = builtin.BUILTINS[name]
        out.append(AgentTool(b.name, b.description, b.parameters))
    for row in attached:
        if row["name"] in builtin.BUILTINS:
            continue
        schema = row.get("json_schema") or {}
        out.append(
            AgentTool(
                row["name"],
                row.get("description") or schema.get("description") or "",
                schema.get("parameters") or {"type": "object", "properties": {}},
                row,
            )
        )
    return out
