"""Where the policy is enforced: the guarded network backend connects to the address it checked.

The resolver is the one seam: a name that answers differently on every lookup (DNS rebinding) is
played by a resolver that changes its answer after the first call. The connections are real, to a
server on loopback.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpcore2
import httpx2
import openai
import pytest

from o.net.outbound import OutboundDenied, OutboundPolicy
from o.net.transport import GuardedBackend, GuardedTransport, denial_in, http_client


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


class Rebinding:
    """A name whose first answer is ``first`` and every later answer ``then``."""

    def __init__(self, first: list[str], then: list[str]) -> None:
        self.answers = [first, then]
        self.lookups = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return self.answers[min(self.lookups, 2) - 1]


def test_the_connection_goes_to_the_checked_address_after_one_lookup(port: int) -> None:
    resolver = Rebinding(["127.0.0.1"], ["169.254.169.254"])
    with http_client(OutboundPolicy(allow_loopback=True), resolver=resolver) as client:
        assert client.get(f"http://rebind.test:{port}/").text == "ok"
    assert resolver.lookups == 1


def test_a_refused_answer_is_never_connected_to(port: int) -> None:
    resolver = Rebinding(["169.254.169.254"], ["127.0.0.1"])
    refused = r"rebind.test \(169.254.169.254\) is a link-local address"
    with (
        http_client(OutboundPolicy(allow_loopback=True), resolver=resolver) as client,
        pytest.raises(OutboundDenied, match=refused),
    ):
        client.get(f"http://rebind.test:{port}/")
    assert resolver.lookups == 1


def test_refused_addresses_are_skipped_for_allowed_ones(port: int) -> None:
    backend = GuardedBackend(OutboundPolicy(allow_loopback=True), lambda host, port: ["10.0.0.1", "127.0.0.1"])
    stream = backend.connect_tcp("mixed.test", port, timeout=1.0)
    try:
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
    finally:
        stream.close()


def test_unix_sockets_are_refused() -> None:
    with pytest.raises(OutboundDenied):
        GuardedBackend(OutboundPolicy()).connect_unix_socket("/var/run/docker.sock")


def test_the_transport_replaces_httpx2s_pool_with_a_guarded_one() -> None:
    """GuardedTransport relies on HTTPTransport keeping its pool in ``_pool``: pinned here."""
    transport = GuardedTransport(OutboundPolicy())
    pool = transport._pool
    assert isinstance(pool, httpcore2.ConnectionPool)
    assert isinstance(pool._network_backend, GuardedBackend)
    transport.close()


def test_denials_are_found_behind_sdk_wrappers() -> None:
    denied = OutboundDenied("no")
    request = httpx2.Request("POST", "http://x.test/")
    try:
        try:
            raise denied
        except OutboundDenied as exc:
            raise openai.APIConnectionError(request=request) from exc
    except openai.APIConnectionError as wrapped:
        assert denial_in(wrapped) is denied
    assert denial_in(denied) is denied
    assert denial_in(ValueError("other")) is None
