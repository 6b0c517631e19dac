"""An organization's MCP servers (Letta's ``mcp_servers``): registering, connecting, refreshing, and
calling their tools, for the API and for the agent loop.

What reaches a server that is secret (its auth token, its custom headers' values, a stdio command's
environment) is sealed at rest by the same :class:`~o.tools.secrets.envelope.SecretBox` as the agents'
tool variables, bound to the server's id, and shown masked in every response.

A server is connected to when it is created, updated or refreshed: its tools are listed and stored in
one transaction only if listing succeeded; otherwise the server is stored unhealthy with the reason and
the caller gets a 502 naming it (never a server with half its tools). stdio servers run a command on
this machine, so they are accepted only where the operator allows them (``O_MCP_STDIO``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from o.errors import Conflict, InvalidInput, NotFound, OError
from o.ids import new_id
from o.net.outbound import OutboundDenied, OutboundPolicy
from o.store import agents as agent_store
from o.store import mcp_servers as store
from o.store.db import Database
from o.tools.mcp.pool import STDIO, McpPool, McpUnavailable, ServerSpec
from o.tools.mcp.sync import SyncReport, sync_tools
from o.tools.sandbox.base import ToolResult, truncate
from o.tools.secrets.envelope import SecretBox

MASKED = "********"
KINDS = ("streamable_http", "sse", "stdio")


class McpServerUnreachable(OError):
    """Connecting to the server or listing its tools failed; it is stored unhealthy."""

    status_code = 502
    code = "mcp_server_unreachable"


@dataclass(frozen=True)
class ServerConfig:
    """A server's configuration as a client gives it (secrets in the clear, on their way to be sealed)."""

    server_type: str
    server_url: str | None = None
    auth_header: str | None = None
    auth_token: str | None = None
    custom_headers: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class McpLimits:
    stdio_allowed: bool
    call_timeout_s: float = 60.0
    max_result_chars: int = 200_000


class McpServers:
    def __init__(
        self, db: Database, secrets: SecretBox, pool: McpPool, policy: OutboundPolicy, limits: McpLimits
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.pool = pool
        self.policy = policy
        self.limits = limits

    # -- the records ----------------------------------------------------------------------------------

    def all(self, org: str) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            return store.list_all(conn, org)

    def get(self, org: str, server_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            return _found(store.get(conn, org, server_id), server_id)

    def create(self, org: str, name: str, config: ServerConfig) -> dict[str, Any]:
        """Register and connect; a server of that name that never connected is replaced (a retry)."""
        self._check(config)
        server_id = new_id("mcp_server")
        with self.db.transaction() as conn:
            earlier = store.get_by_name(conn, org, name)
            if earlier is not None and (earlier["healthy"] or store.tools_of(conn, org, earlier["id"])):
                raise Conflict(f"an MCP server named {name!r} exists", server_name=name)
            if earlier is not None:
                server_id = earlier["id"]
                store.update(conn, org, server_id, self._columns(server_id, config))
            else:
                row = {"id": server_id, "organization_id": org, "server_name": name}
                if store.insert(conn, row | self._columns(server_id, config)) is None:
                    raise Conflict(f"an MCP server named {name!r} exists", server_name=name)
        self.pool.forget(server_id)
        self._connect(org, server_id, config)
        return self.get(org, server_id)

    def update(self, org: str, server_id: str, name: str | None, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (config fields given; a masked secret sent back keeps its value) and reconnect."""
        current = self.get(org, server_id)
        config = _merged(self.config_of(current), changes)
        self._check(config)
        with self.db.transaction() as conn:
            columns = self._columns(server_id, config) | ({"server_name": name} if name else {})
            if store.update(conn, org, server_id, columns) is None:
                raise NotFound(f"MCP server {server_id} not found")
        self.pool.forget(server_id)
        self._connect(org, server_id, config)
        return self.get(org, server_id)

    def delete(self, org: str, server_id: str) -> None:
        with self.db.transaction() as conn:
            if not store.delete(conn, org, server_id):
                raise NotFound(f"MCP server {server_id} not found")
        self.pool.forget(server_id)

    def refresh(self, org: str, server_id: str, agent_id: str | None = None) -> dict[str, Any]:
        """List the server's tools again and bring its tool rows in line; a summary of what changed."""
        server = self.get(org, server_id)
        if agent_id is not None:
            with self.db.transaction() as conn:
                agent_store.require(conn, org, agent_id)
        report = self._connect(org, server_id, self.config_of(server), agent_id=agent_id)
        return {"server_id": server_id, "server_name": server["server_name"], "healthy": True, **report.to_dict()}

    # -- tools ----------------------------------------------------------------------------------------

    def tools(self, org: str, server_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            _found(store.get(conn, org, server_id), server_id)
            return store.tools_of(conn, org, server_id)

    def tool(self, org: str, server_id: str, tool_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            _found(store.get(conn, org, server_id), server_id)
            tool = store.tool_of(conn, org, server_id, tool_id)
        if tool is None:
            raise NotFound(f"MCP server {server_id} has no tool {tool_id}")
        return tool

    def run(self, org: str, server_id: str, tool_id: str, args: dict[str, Any]) -> ToolResult:
        return self.call(self.tool(org, server_id, tool_id), args)

    def call(self, tool: dict[str, Any], args: dict[str, Any]) -> ToolResult:
        """Call an MCP tool row's tool; every failure is an error result for the model, never a raise."""
        from mcp.shared.exceptions import MCPError

        from o.tools.mcp.results import result_text

        started = time.monotonic()
        name = tool["name"]
        server_id = ((tool.get("metadata") or {}).get("mcp") or {}).get("server_id")
        with self.db.transaction() as conn:
            server = store.get(conn, tool["organization_id"], server_id) if server_id else None
        if server is None:
            return _error(name, "its MCP server was deleted", started)
        try:
            spec = self.spec_for(server["id"], self.config_of(server))
            result = self.pool.call_tool(spec, name, args, self.limits.call_timeout_s)
        except TimeoutError:
            return _error(name, f"no result within {self.limits.call_timeout_s:g} s; the call was cancelled", started)
        except (McpUnavailable, MCPError, OError) as exc:
            return _error(name, getattr(exc, "message", None) or str(exc), started)
        text = result_text(result, self.limits.max_result_chars)
        limit = int(tool.get("return_char_limit") or self.limits.max_result_chars)
        if result.is_error:
            return _error(name, text or "the server reported an error", started, limit)
        return ToolResult("success", truncate(text, limit), duration_ms=(time.monotonic() - started) * 1000)

    # -- connecting -----------------------------------------------------------------------------------

    def _connect(self, org: str, server_id: str, config: ServerConfig, *, agent_id: str | None = None) -> SyncReport:
        from mcp.shared.exceptions import MCPError

        from o.tools.mcp.results import offered

        now = datetime.now(UTC)
        try:
            listed = self.pool.list_tools(self.spec_for(server_id, config))
        except (McpUnavailable, MCPError, TimeoutError, OError) as exc:
            reason = getattr(exc, "message", None) or str(exc) or "no answer in time"
            with self.db.transaction() as conn:
                store.update(conn, org, server_id, {"healthy": False, "last_error": reason, "checked_at": now})
            if isinstance(exc, McpUnavailable) and exc.denied:
                raise OutboundDenied(f"MCP server refused: {reason}", mcp_server_id=server_id) from exc
            raise McpServerUnreachable(f"MCP server unreachable: {reason}", mcp_server_id=server_id) from exc
        with self.db.transaction() as conn:
            server = store.update(conn, org, server_id, {"healthy": True, "last_error": None, "checked_at": now})
            if server is None:  # deleted while it was being listed
                raise NotFound(f"MCP server {server_id} not found")
            good, skipped = offered(listed, server["server_name"])
            return sync_tools(conn, server, good, skipped, agent_id)

    def _check(self, config: ServerConfig) -> None:
        if config.server_type not in KINDS:
            raise InvalidInput(f"mcp_server_type must be one of {', '.join(KINDS)}", field="mcp_server_type")
        if config.server_type == STDIO:
            if not self.limits.stdio_allowed:
                raise InvalidInput("stdio MCP servers are not enabled on this server (O_MCP_STDIO)", field="command")
            if not config.command or not config.command.strip():
                raise InvalidInput("a stdio MCP server needs a command", field="command")
            return
        if not config.server_url:
            raise InvalidInput("an HTTP or SSE MCP server needs a server_url", field="server_url")
        self.policy.check_url(config.server_url)

    def _columns(self, server_id: str, config: ServerConfig) -> dict[str, Any]:
        secrets = {"auth_token": config.auth_token, "headers": config.custom_headers, "env": config.env}
        stdio = config.server_type == STDIO
        return {
            "server_type": config.server_type,
            "server_url": None if stdio else config.server_url,
            "command": config.command if stdio else None,
            "args": list(config.args) if stdio else [],
            "auth_header": None if stdio else config.auth_header,
            # nothing to seal, nothing to open on every call
            "sealed": self.secrets.seal(json.dumps(secrets), _context(server_id)) if any(secrets.values()) else None,
            "has_auth_token": bool(config.auth_token) and not stdio,
            "header_names": [] if stdio else sorted(config.custom_headers),
            "env_names": sorted(config.env) if stdio else [],
        }

    def config_of(self, server: dict[str, Any]) -> ServerConfig:
        """A stored server's configuration, its secrets opened."""
        secrets = json.loads(self.secrets.open(server["sealed"], _context(server["id"]))) if server["sealed"] else {}
        return ServerConfig(
            server_type=server["server_type"],
            server_url=server["server_url"],
            auth_header=server["auth_header"],
            auth_token=secrets.get("auth_token"),
            custom_headers=dict(secrets.get("headers") or {}),
            command=server["command"],
            args=tuple(server["args"] or ()),
            env=dict(secrets.get("env") or {}),
        )

    def spec_for(self, server_id: str, config: ServerConfig) -> ServerSpec:
        if config.server_type == STDIO:
            if not self.limits.stdio_allowed:
                raise InvalidInput("stdio MCP servers are not enabled on this server (O_MCP_STDIO)")
            return ServerSpec(server_id, STDIO, command=config.command, args=config.args, env=config.env)
        return ServerSpec(server_id, config.server_type, url=config.server_url, headers=_headers(config))


def _headers(config: ServerConfig) -> dict[str, str]:
    headers = dict(config.custom_headers)
    if config.auth_token:
        name = config.auth_header or "Authorization"
        token = config.auth_token
        # Letta's clients give the bare token for the Authorization header
        if name.lower() == "authorization" and " " not in token.strip():
            token = f"Bearer {token}"
        headers[name] = token
    return headers


def _merged(current: ServerConfig, changes: dict[str, Any]) -> ServerConfig:
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "auth_token" and value == MASKED:
            continue
        if key in ("custom_headers", "env") and isinstance(value, dict):
            kept = getattr(current, key)
            value = {k: (kept.get(k, v) if v == MASKED else v) for k, v in value.items()}
        if key == "args" and value is not None:
            value = tuple(value)
        values[key] = value if value is not None or key in ("auth_header", "auth_token") else getattr(current, key)
    if values.get("server_type") not in (None, current.server_type):
        # another kind of server: nothing of the old kind's configuration carries over
        return ServerConfig(**{k: v for k, v in values.items() if v is not None})
    values.pop("server_type", None)
    return replace(current, **values)


def _found(row: dict[str, Any] | None, server_id: str) -> dict[str, Any]:
    if row is None:
        raise NotFound(f"MCP server {server_id} not found")
    return row


def _context(server_id: str) -> bytes:
    return f"o/mcp_servers/{server_id}".encode()


def _error(name: str, message: str, started: float, limit: int = 6000) -> ToolResult:
    text = truncate(f"Error executing MCP tool {name}: {message}", limit)
    return ToolResult("error", text, message=message, duration_ms=(time.monotonic() - started) * 1000)
