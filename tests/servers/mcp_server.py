"""A real MCP server, written with the official ``mcp`` SDK (``MCPServer``, formerly FastMCP), for O's
MCP client to talk to: over stdio (``python -m tests.servers.mcp_server``) and over streamable HTTP
or SSE (:class:`HttpMcpServer`, uvicorn in a thread on a loopback port).

Its tools: ``add`` and ``echo`` (quick), ``slow`` (sleeps), ``fail`` (raises), ``huge`` (a result of
any size), ``extra`` (present unless ``MCP_TEST_NO_EXTRA`` is set, or removed at run time: a tool that
disappears on refresh), and ``bad_schema`` (an input schema that is not an object schema: a
malformed tool O must skip). The HTTP server can demand a bearer token and can be stopped and
started again on the same port (a server restart).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

NO_EXTRA = "MCP_TEST_NO_EXTRA"


def build(*, extra: bool = True) -> MCPServer:
    server = MCPServer("o-test")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Sleep, then answer.")
    async def slow(seconds: float) -> str:
        await anyio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Always fails.")
    def fail(message: str = "boom") -> str:
        raise RuntimeError(message)

    @server.tool(description="A result of `chars` characters.")
    def huge(chars: int) -> str:
        return "x" * chars

    @server.tool(description="A tool with a malformed input schema.")
    def bad_schema(value: str) -> str:
        return value

    if extra:

        @server.tool(description="A tool that may go away.")
        def extra_tool(value: str) -> str:
            return f"extra {value}"

    # an input schema that is not valid JSON Schema ("strng" names no type): what a broken server might publish
    server._tool_manager._tools["bad_schema"].parameters = {
        "type": "object",
        "properties": {"value": {"type": "strng"}},
    }
    return server


def stdio_command() -> tuple[str, list[str]]:
    """The command and arguments that run this server over stdio."""
    return sys.executable, ["-m", "tests.servers.mcp_server"]


class _BearerGate:
    """ASGI middleware: 401 unless the request carries ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None:
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {self.token}".encode():
                await send(
                    {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpMcpServer:
    """The test server over streamable HTTP (``kind="streamable_http"``) or SSE, in a thread."""

    def __init__(self, kind: str = "streamable_http", *, token: str | None = None, port: int | None = None) -> None:
        self.kind = kind
        self.token = token
        self.port = port or free_port()
        self.mcp = build()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        path = "/mcp" if self.kind == "streamable_http" else "/sse"
        return f"http://127.0.0.1:{self.port}{path}"

    def _app(self) -> Any:
        app = self.mcp.streamable_http_app() if self.kind == "streamable_http" else self.mcp.sse_app()
        return _BearerGate(app, self.token)

    def start(self) -> HttpMcpServer:
        # a fresh MCPServer's session manager runs once per app: a restart is a new server process's worth
        self.mcp = build(extra=self.mcp is None or "extra_tool" in self.mcp._tool_manager._tools)
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the MCP test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove_tool(self, name: str) -> None:
        self.mcp.remove_tool(name)

    def __enter__(self) -> HttpMcpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    build(extra=not os.environ.get(NO_EXTRA)).run("stdio")
