"""Letta's MCP server shapes (letta-client's ``mcp_servers``): create and update bodies for the three
kinds (streamable HTTP, SSE, stdio), and the server as every response shows it, secrets masked."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from o.api.schemas.common import Request as RequestBody
from o.api.schemas.common import Response
from o.tools.mcp.servers import MASKED, ServerConfig

_NAME = Field(min_length=1, max_length=200)
_URL = Field(min_length=1, max_length=2048)
_HEADERS = Field(default=None, max_length=64)


class CreateStdio(RequestBody):
    mcp_server_type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1, max_length=1024)
    args: list[Annotated[str, Field(max_length=4096)]] = Field(max_length=256)
    env: dict[str, Annotated[str, Field(max_length=32_768)]] | None = Field(default=None, max_length=256)

    def config(self) -> ServerConfig:
        return ServerConfig("stdio", command=self.command, args=tuple(self.args), env=dict(self.env or {}))


class _CreateHttp(RequestBody):
    server_url: str = _URL
    auth_header: str | None = Field(default=None, min_length=1, max_length=256)
    auth_token: str | None = Field(default=None, max_length=8192)
    custom_headers: dict[str, Annotated[str, Field(max_length=8192)]] | None = _HEADERS

    def config(self) -> ServerConfig:
        kind = "sse" if isinstance(self, CreateSse) else "streamable_http"
        return ServerConfig(
            kind,
            server_url=self.server_url,
            auth_header=self.auth_header,
            auth_token=self.auth_token or None,
            custom_headers=dict(self.custom_headers or {}),
        )


class CreateSse(_CreateHttp):
    mcp_server_type: Literal["sse"]


class CreateStreamableHttp(_CreateHttp):
    mcp_server_type: Literal["streamable_http"] = "streamable_http"


class McpServerCreate(RequestBody):
    server_name: str = _NAME
    # SSE needs its type named; a body with a command is stdio, one with a URL streamable HTTP
    config: CreateSse | CreateStdio | CreateStreamableHttp = Field(union_mode="left_to_right")


class UpdateConfig(RequestBody):
    """Any of the three kinds' fields; a masked value sent back keeps the stored secret."""

    mcp_server_type: Literal["stdio", "sse", "streamable_http"] | None = None
    server_url: str | None = Field(default=None, min_length=1, max_length=2048)
    auth_header: str | None = Field(default=None, max_length=256)
    auth_token: str | None = Field(default=None, max_length=8192)
    custom_headers: dict[str, Annotated[str, Field(max_length=8192)]] | None = _HEADERS
    command: str | None = Field(default=None, min_length=1, max_length=1024)
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=256)
    env: dict[str, Annotated[str, Field(max_length=32_768)]] | None = Field(default=None, max_length=256)

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        if "mcp_server_type" in given:
            given["server_type"] = given.pop("mcp_server_type")
        return given


class McpServerUpdate(RequestBody):
    server_name: str | None = Field(default=None, min_length=1, max_length=200)
    config: UpdateConfig


class McpServer(Response):
    """A server as letta-client's StdioMcpServer / SseMcpServer / StreamableHTTPMcpServer, plus its health."""

    id: str
    server_name: str
    mcp_server_type: Literal["stdio", "sse", "streamable_http"]
    server_url: str | None = None
    auth_header: str | None = None
    auth_token: str | None = None
    custom_headers: dict[str, str] | None = None
    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    healthy: bool = Field(description="whether the last connect listed the server's tools")
    last_error: str | None = Field(default=None, description="why the last connect failed")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> McpServer:
        common = {
            "id": row["id"],
            "server_name": row["server_name"],
            "mcp_server_type": row["server_type"],
            "healthy": row["healthy"],
            "last_error": row["last_error"],
        }
        if row["server_type"] == "stdio":
            env = {name: MASKED for name in row["env_names"]}
            return cls(**common, command=row["command"], args=list(row["args"]), env=env)
        return cls(
            **common,
            server_url=row["server_url"],
            auth_header=row["auth_header"],
            auth_token=MASKED if row["has_auth_token"] else None,
            custom_headers={name: MASKED for name in row["header_names"]} or None,
        )


class McpToolRun(RequestBody):
    args: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments")
