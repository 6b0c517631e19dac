"""The tools an agent may call this step, and how a call is carried out.

Built-ins (``o.tools.builtin``) run in-process inside the transaction that stores their
result. User tools (Python source in the ``tools`` table, attached through
``agent_tools``) run through a :class:`ToolExecutor`, by default the sandbox; so do the
outside-world built-ins (``run_code``, ``fetch_webpage``, ``web_search``), which may be slow and so
run outside any transaction too (:class:`o.tools.web.tools.WebTools`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from o.llm.types import ToolSpec
from o.store.db import Database
from o.store.mcp_servers import MCP_TOOL_TYPE
from o.tools import base, builtin
from o.tools.sandbox.base import Sandbox, ToolResult
from o.tools.secrets.envelope import SecretBox

if TYPE_CHECKING:
    from o.tools.mcp.servers import McpServers
    from o.tools.web.tools import WebTools

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
    Lambda in AWS), with the agent's tool variables, which ``secrets`` opens for the run; an MCP
    server's tool (tool_type external_mcp) through ``mcp``, on the server's pooled connection."""

    def __init__(
        self,
        db: Database,
        sandbox: Sandbox,
        secrets: SecretBox,
        web: WebTools | None = None,
        mcp: McpServers | None = None,
    ) -> None:
        self.db = db
        self.sandbox = sandbox
        self.secrets = secrets
        self.web = web
        self.mcp = mcp

    def run(self, tool: dict[str, Any], args: dict[str, Any], *, organization_id: str, agent_id: str) -> ToolResult:
        if self.mcp is not None and tool.get("tool_type") == MCP_TOOL_TYPE:
            return self.mcp.call(tool, args)
        from o.tools.execute import run_tool, run_web

        if base.is_web(tool):
            return run_web(self.web, tool, args)

        return run_tool(self.db, organization_id, agent_id, tool["name"], args, self.sandbox, secrets=self.secrets)


def web_tools(tools: ToolExecutor | None) -> WebTools | None:
    """What runs the outside-world built-ins in this process, if anything does."""
    return tools.web if isinstance(tools, SandboxExecutor) else None


def offered_builtins(tools: ToolExecutor | None) -> frozenset[str]:
    """The outside-world built-ins this process can run (their records are made where it offers them)."""
    web = web_tools(tools)
    return web.offered() if web is not None else frozenset()


def agent_tools(agent: dict[str, Any], attached: list[dict[str, Any]]) -> list[AgentTool]:
    """The tools ``attached`` to the agent: the records of Letta's base tools among them run as the
    built-ins (``o.tools.base``), first, in the order of Letta's base tool list; the rest are user tools."""
    del agent  # which tools an agent has is its attachments, whatever its type
    builtins = {row["name"] for row in attached if base.is_base(row) and not base.is_web(row)}
    names = [name for name in builtin.BASE_TOOLS if name in builtins] + sorted(builtins - set(builtin.BASE_TOOLS))
    out = [AgentTool(b.name, b.description, b.parameters) for b in map(builtin.BUILTINS.__getitem__, names)]
    for row in attached:
        if base.is_base(row) and not base.is_web(row):
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
