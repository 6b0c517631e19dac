"""Connections to MCP servers, one per server, kept open between calls, through the official ``mcp`` SDK.

The SDK is asyncio (anyio); O's agent loop and routes are threads. The pool runs one event loop on a
daemon thread, and each connection is a task on it that enters the SDK's transport and
:class:`mcp.ClientSession` and holds them open until the connection is closed (anyio's context
managers must be left by the task that entered them). A caller's thread submits a coroutine and waits
for it with a deadline; at the deadline the coroutine is cancelled, which cancels the request in the
SDK (it tells the server the request was cancelled).

A connection is keyed by the server's id and the fingerprint of what it is reached with, so an
updated server gets a new connection. A connection whose transport failed (the server went away or
restarted: its process exited, or its HTTP session is unknown to it now) is dropped and the call is
made once more on a fresh connection; a second failure is the caller's.

HTTP and SSE servers are reached through :func:`o.net.transport.async_http_client`: every connection
the SDK makes passes the outbound URL policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2

from o.net.outbound import OutboundPolicy
from o.net.transport import async_http_client, denial_in
from o.observability import logger

if TYPE_CHECKING:  # the SDK is imported when a server is first connected to: no cost to processes that never do
    from mcp import ClientSession, types

T = TypeVar("T")

STDIO, SSE, STREAMABLE_HTTP = "stdio", "sse", "streamable_http"


class McpUnavailable(Exception):
    """The server could not be reached, or it broke the connection; the message says how. ``denied``:
    the outbound URL policy refused the address its name resolved to."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server: its kind, and its URL and headers or its command (secrets opened)."""

    server_id: str
    kind: str
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        material = json.dumps(
            [self.kind, self.url, sorted(self.headers.items()), self.command, self.args, sorted(self.env.items())]
        )
        return f"{self.server_id}:{hashlib.sha256(material.encode()).hexdigest()[:16]}"


class _Connection:
    """One open session, held by its own task until :meth:`close`."""

    def __init__(self, spec: ServerSpec, open_streams: Callable[[_Connection], Any]) -> None:
        self.spec = spec
        self._open_streams = open_streams
        self.ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        # a fault the transport reported (a refused connection, an HTTP error): it ends the connection
        self.failure: Exception | None = None
        # the last HTTP error status the server answered with (the SDK's errors leave it out)
        self.http_status: int | None = None
        self.task = asyncio.get_running_loop().create_task(self._hold())

    async def _hold(self) -> None:
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._open_streams(self))
                session = await stack.enter_async_context(ClientSession(read, write, message_handler=self._on_message))
                await session.initialize()
                self.ready.set_result(session)
                await self._closing.wait()
        except BaseException as exc:
            if not self.ready.done():
                cause = self.failure or exc
                self.ready.set_exception(McpUnavailable(self.explain(cause), denied=_denied(cause)))
                self.ready.exception()  # retrieved: a connection nobody waits on any more logs nothing

    def explain(self, exc: BaseException) -> str:
        reason = _reason(exc)
        return f"{reason} (HTTP {self.http_status})" if self.http_status is not None else reason

    async def record_status(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.http_status = response.status_code

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            # without this, a request whose POST failed would wait for an answer that never comes
            self.failure = message
            self.task.cancel()

    @property
    def alive(self) -> bool:
        return not self.task.done()

    async def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(self.task), 5)
        if not self.task.done():
            self.task.cancel()


class McpPool:
    """Pooled connections to MCP servers, safe to share between threads."""

    def __init__(self, policy: OutboundPolicy, *, connect_timeout_s: float = 10.0) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self._loop = asyncio.new_event_loop()
        # started on first use: most processes that build a pool never connect to a server
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._connections: dict[str, _Connection] = {}

    # -- what callers use ---------------------------------------------------------------------------

    def list_tools(self, spec: ServerSpec) -> list[types.Tool]:
        """The server's tools (every page), connecting first if need be."""
        return self._submit(self._with_session(spec, _all_tools), self.connect_timeout_s * 2)

    def call_tool(self, spec: ServerSpec, name: str, args: dict[str, Any], timeout_s: float) -> types.CallToolResult:
        """Call ``name``; raises TimeoutError after ``timeout_s`` (the request is cancelled), McpUnavailable
        when the server cannot be reached, and the SDK's MCPError when the server answers with an error."""

        async def call(session: ClientSession) -> types.CallToolResult:
            from mcp import types

            # at the deadline the SDK's request is cancelled, which tells the server so
            result = await asyncio.wait_for(session.call_tool(name, args), timeout_s)
            if not isinstance(result, types.CallToolResult):
                raise McpUnavailable(f"the server answered {name} with a {type(result).__name__}, not a tool result")
            return result

        return self._submit(self._with_session(spec, call), timeout_s + self.connect_timeout_s)

    def forget(self, server_id: str) -> None:
        """Close every connection to the server (it was updated or deleted)."""
        self._submit(self._forget(server_id), 10)

    def close(self) -> None:
        if self._thread is not None:
            self._submit(self._forget(None), 10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    # -- on the pool's loop -------------------------------------------------------------------------

    def _submit(self, coroutine: Awaitable[T], timeout_s: float) -> T:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-pool", daemon=True)
                self._thread.start()
        future = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()  # cancels the SDK's request, which notifies the server
            raise

    async def _with_session(self, spec: ServerSpec, use: Callable[[ClientSession], Awaitable[T]]) -> T:
        for attempt in (1, 2):
            connection = await self._connection(spec)
            try:
                session = await asyncio.wait_for(asyncio.shield(connection.ready), self.connect_timeout_s)
            except TimeoutError:
                await self._drop(spec.key)
                raise McpUnavailable(f"no answer from the server within {self.connect_timeout_s:g} s") from None
            except McpUnavailable:
                await self._drop(spec.key)
                raise
            try:
                return await use(session)
            except TimeoutError:
                raise  # the call's own deadline (an OSError too, but no sign of a broken connection)
            except (OSError, httpx2.HTTPError, McpUnavailable) as exc:
                await self._drop(spec.key)
                if attempt == 2:
                    raise McpUnavailable(connection.explain(exc)) from exc
            except Exception as exc:
                if connection.alive and not _transport_failure(exc):
                    raise
                await self._drop(spec.key)
                if attempt == 2:
                    raise McpUnavailable(connection.explain(connection.failure or exc)) from exc
            logger.info("MCP connection lost; reconnecting", extra={"mcp_server_id": spec.server_id})
        raise AssertionError("unreachable")

    async def _connection(self, spec: ServerSpec) -> _Connection:
        connection = self._connections.get(spec.key)
        if connection is not None and connection.alive:
            return connection
        if connection is not None:
            await self._drop(spec.key)
        connection = _Connection(spec, self._open_streams)
        self._connections[spec.key] = connection
        return connection

    async def _drop(self, key: str) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            await connection.close()

    async def _forget(self, server_id: str | None) -> None:
        for key in [k for k in self._connections if server_id is None or k.startswith(f"{server_id}:")]:
            await self._drop(key)

    def _open_streams(self, connection: _Connection) -> contextlib.AbstractAsyncContextManager[Any]:
        from mcp.client.sse import sse_client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        spec = connection.spec
        if spec.kind == STDIO:
            assert spec.command is not None
            # the server gets the SDK's minimal environment (PATH, HOME, ...) plus its own variables only
            params = StdioServerParameters(command=spec.command, args=list(spec.args), env=dict(spec.env) or None)
            return stdio_client(params)
        assert spec.url is not None
        self.policy.check_url(spec.url)
        timeout = httpx2.Timeout(self.connect_timeout_s, read=None)
        if spec.kind == SSE:

            def factory(
                headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: Any = None
            ) -> httpx2.AsyncClient:
                del auth
                client = async_http_client(self.policy, headers=headers, timeout=timeout)
                client.event_hooks["response"].append(connection.record_status)
                return client

            return sse_client(
                spec.url, headers=spec.headers, timeout=self.connect_timeout_s, httpx_client_factory=factory
            )
        client = async_http_client(self.policy, headers=spec.headers, timeout=timeout)
        client.event_hooks["response"].append(connection.record_status)
        return _streamable(spec.url, client)


@contextlib.asynccontextmanager
async def _streamable(url: str, client: httpx2.AsyncClient) -> AsyncIterator[Any]:
    from mcp.client.streamable_http import streamable_http_client

    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _all_tools(session: ClientSession) -> list[types.Tool]:
    from mcp import types

    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever is cut off at 100 pages
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _transport_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection broke (rather than the server refusing the request)."""
    text = str(exc).lower()
    return any(word in text for word in ("connection closed", "session terminated", "session not found", "404"))


def _denied(exc: BaseException) -> bool:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return denial_in(exc) is not None


def _reason(exc: BaseException) -> str:
    """The innermost useful message of ``exc`` (anyio wraps a transport's failure in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    denied = denial_in(exc)
    if denied is not None:
        return denied.message
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if type(exc).__name__ not in message else message
