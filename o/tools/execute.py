"""Running an agent's custom tool: what the agent loop calls for every non-built-in tool call.

The database is read in a short transaction and released before the tool runs, so a
tool that takes its full wall time holds no connection and no lock. Every outcome,
including "no such tool", comes back as a :class:`ToolResult` for the agent to read;
only a wrong organization/agent pairing is treated the same as a missing tool.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from o.errors import NotFound, OError
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource
from o.store import agents as agent_store
from o.store import tools as tool_store
from o.store.db import Conn, Database
from o.tools import base, catalog
from o.tools.builtin import ToolContext, ToolError, run_builtin
from o.tools.sandbox.base import Limits, Sandbox, ToolInvocation, ToolResult, truncate
from o.tools.secrets.envelope import SecretBox, SecretUnavailable

if TYPE_CHECKING:
    from o.tools.mcp.servers import McpServers
    from o.tools.web.tools import WebTools


def run_tool(
    db_or_conn: Database | Conn,
    org_id: str,
    agent_id: str,
    tool_name: str,
    args: dict[str, Any],
    sandbox: Sandbox,
    *,
    secrets: SecretBox,
    limits: Limits | None = None,
) -> ToolResult:
    """Run the agent's attached custom tool ``tool_name`` with ``args`` in ``sandbox``.

    The run sees the agent's own tool variables, opened by ``secrets`` for it alone, and nothing else
    of the server.
    """
    started = time.monotonic()
    if isinstance(db_or_conn, Database):
        with db_or_conn.transaction() as conn:
            loaded = _load(conn, org_id, agent_id, tool_name, secrets)
    else:
        loaded = _load(db_or_conn, org_id, agent_id, tool_name, secrets)
    if isinstance(loaded, str):
        return ToolResult(
            status="error",
            func_return=f"Error executing tool {tool_name}: {loaded}",
            message=loaded,
            duration_ms=(time.monotonic() - started) * 1000,
        )
    tool, env = loaded
    if not isinstance(args, dict):
        message = "arguments must be a JSON object"
        return ToolResult("error", f"Error executing tool {tool_name}: {message}", message=message)
    function_name = (tool.get("json_schema") or {}).get("name") or tool["name"]
    invocation = ToolInvocation(
        source_code=tool["source_code"] or "",
        function_name=function_name,
        args=args,
        env=env,
        limits=limits or Limits(),
        return_char_limit=int(tool["return_char_limit"]),
    )
    return sandbox.run(invocation)


def _load(
    conn: Conn, org_id: str, agent_id: str, tool_name: str, secrets: SecretBox
) -> tuple[dict[str, Any], dict[str, str]] | str:
    if agent_store.get(conn, org_id, agent_id) is None:
        return f"agent {agent_id} not found"
    tool = tool_store.attached_by_name(conn, org_id, agent_id, tool_name)
    if tool is None:
        return f"no tool named {tool_name!r} is attached to this agent"
    if tool["source_type"] != "python" or not tool["source_code"]:
        return f"tool {tool_name!r} has no Python source to run"
    try:
        env = catalog.variables_for_run(conn, agent_id, secrets)
    except SecretUnavailable as exc:
        return f"the agent's tool variables could not be opened: {exc.message}"
    return tool, env


def run_for_agent(
    db: Database,
    org_id: str,
    agent_id: str,
    tool_name: str,
    args: dict[str, Any],
    sandbox: Sandbox,
    *,
    secrets: SecretBox,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    web: WebTools | None = None,
    mcp: McpServers | None = None,
) -> ToolResult:
    """Run the agent's attached tool ``tool_name`` once, outside any conversation (Letta's
    ``agents.tools.run``): a base tool in-process against the agent's memory, an MCP server's tool
    through ``mcp``, any other in the sandbox with the agent's tool variables. An unknown agent, or a
    tool not attached to it, is NotFound."""
    with db.transaction() as conn:
        agent_store.require(conn, org_id, agent_id)
        tool = tool_store.attached_by_name(conn, org_id, agent_id, tool_name)
        if tool is None:
            raise NotFound(f"no tool named {tool_name!r} is attached to agent {agent_id}")
        if base.is_base(tool) and not base.is_web(tool):
            return _run_base(conn, org_id, agent_id, tool_name, args, embedders)
    if base.is_web(tool):
        return run_web(web, tool, args)
    if mcp is not None and tool["tool_type"] == "external_mcp":
        return mcp.call(tool, args)
    return run_tool(db, org_id, agent_id, tool_name, args, sandbox, secrets=secrets)


def run_web(web: WebTools | None, tool: dict[str, Any], args: dict[str, Any]) -> ToolResult:
    """Run the outside-world built-in whose record is ``tool`` (no transaction is open: a fetch may take
    its full time); what the agent sees is cut to the record's ``return_char_limit``, as a user tool's is."""
    name = str(tool["name"])
    if web is None:
        message = f"{name} is not available on this server"
        return ToolResult("error", f"Error executing tool {name}: {message}", message=message)
    result = web.run(name, args)
    return replace(result, func_return=truncate(result.func_return, int(tool.get("return_char_limit") or 6000)))


def _run_base(
    conn: Conn, org_id: str, agent_id: str, tool_name: str, args: dict[str, Any], embedders: EmbedderSource
) -> ToolResult:
    started = time.monotonic()
    context = ToolContext(conn, org_id, agent_id, embedders=embedders)
    try:
        # a savepoint: a built-in that fails part-way leaves the agent's memory as it was
        with conn.transaction():
            output = run_builtin(context, tool_name, args)
    except (ToolError, OError) as exc:
        message = str(exc)
        return ToolResult("error", f"Error executing tool {tool_name}: {message}", message=message)
    return ToolResult("success", output, duration_ms=(time.monotonic() - started) * 1000)
