"""Where the outbound policy is enforced: the moment a TCP connection is made.

The ``openai`` and ``anthropic`` SDKs send through an ``httpx2.Client`` (their ``http_client``
argument), which sends through ``httpcore2``. ``httpcore2`` connects through a *network backend*;
:class:`GuardedBackend` is one that resolves the host once, keeps the addresses the
:class:`~o.net.outbound.OutboundPolicy` allows, and connects to one of those addresses itself, so
what was checked is what is connected to (DNS rebinding has no second lookup to change). TLS still
verifies the certificate against the host name (httpcore passes it as the server name).

:func:`http_client` is the client every outbound call uses: it does not follow redirects (a
redirect would be checked again at connect time anyway, but it could carry a provider's key to
another host), and it ignores proxy variables in the environment (through a proxy, the address
connected to would be the proxy's, and the policy could not see the real one).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

import httpcore2
import httpx2

from o.net.outbound import OutboundDenied, OutboundPolicy

# (host, port) -> the addresses it resolves to, in the resolver's order of preference
Resolver = Callable[[str, int], list[str]]

# The SDKs' own defaults for their clients, kept so that passing our client changes nothing else.
SDK_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an address resolves to itself), without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore2.NetworkBackend):
    """httpcore2's synchronous backend, connecting only to addresses the policy allows."""

    def __init__(
        self, policy: OutboundPolicy, resolver: Resolver = resolve, backend: httpcore2.NetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.backend = backend if backend is not None else httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        failure: Exception | None = None
        # like socket.create_connection: try each address in turn, raise the last failure
        for address in self.policy.connectable(host, self.resolver(host, port)):
            try:
                return self.backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # connectable returns at least one address or raises
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        raise OutboundDenied("O does not call out through unix sockets", path=path)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class GuardedTransport(httpx2.HTTPTransport):
    """httpx2's HTTP transport over a connection pool whose connections go through :class:`GuardedBackend`.

    ``HTTPTransport`` takes no network backend, so its ``__init__`` (which only builds the pool it keeps
    in ``_pool``) is replaced by one that builds the same pool with the guarded backend; requests,
    responses and error mapping stay httpx2's own. (tests/unit/net pins this, should httpx2 rename it.)
    """

    def __init__(self, policy: OutboundPolicy, *, limits: httpx2.Limits = SDK_LIMITS, resolver: Resolver = resolve):
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver),
        )


def http_client(policy: OutboundPolicy, *, resolver: Resolver = resolve) -> httpx2.Client:
    """The HTTP client of an outbound call (an SDK's ``http_client``): policy-checked, no redirects, no proxies."""
    return httpx2.Client(transport=GuardedTransport(policy, resolver=resolver), follow_redirects=False, trust_env=False)


class AsyncGuardedBackend(httpcore2.AsyncNetworkBackend):
    """:class:`GuardedBackend` for asyncio clients (the ``mcp`` SDK's ``httpx2.AsyncClient``): the
    same one lookup, the same checked addresses; the lookup runs on a worker thread."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.resolver = resolver
        self.backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        import anyio.to_thread

        addresses = await anyio.to_thread.run_sync(self.resolver, host, port)
        failure: Exception | None = None
        for address in self.policy.connectable(host, addresses):
            try:
                return await self.backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise OutboundDenied("O does not call out through unix sockets", path=path)

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


class AsyncGuardedTransport(httpx2.AsyncHTTPTransport):
    """:class:`GuardedTransport` for ``httpx2.AsyncClient``: the same pool replacement, async."""

    def __init__(self, policy: OutboundPolicy, *, limits: httpx2.Limits = SDK_LIMITS, resolver: Resolver = resolve):
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncGuardedBackend(policy, resolver),
        )


def async_http_client(
    policy: OutboundPolicy,
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    resolver: Resolver = resolve,
) -> httpx2.AsyncClient:
    """:func:`http_client` for asyncio callers (MCP servers): policy-checked, no redirects, no proxies."""
    return httpx2.AsyncClient(
        transport=AsyncGuardedTransport(policy, resolver=resolver),
        follow_redirects=False,
        trust_env=False,
        headers=headers,
        timeout=timeout if timeout is not None else httpx2.Timeout(30.0),
    )


def denial_in(exc: BaseException) -> OutboundDenied | None:
    """The policy's refusal behind ``exc``, if that is what it is.

    The SDKs pass a refusal on as it is (openai) or wrapped as a connection error (anthropic), so
    the chain of causes is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OutboundDenied):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
