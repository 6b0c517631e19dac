"""The HTTP client every outbound call uses, with real name resolution (``localhost``) and real servers."""

from __future__ import annotations

import pytest

from o.net.outbound import OutboundDenied, OutboundPolicy
from o.net.transport import http_client
from tests.servers.capture import Answer, CaptureServer


def test_localhost_is_resolved_then_allowed_or_refused_by_the_policy() -> None:
    with CaptureServer(Answer(200, b"ok", "text/plain")) as server:
        with http_client(OutboundPolicy(allow_loopback=True)) as client:
            assert client.get(server.url("/", host="localhost")).text == "ok"
        with http_client(OutboundPolicy()) as client, pytest.raises(OutboundDenied, match="loopback address"):
            client.get(server.url("/", host="localhost"))
        assert len(server.requests) == 1


def test_redirects_are_returned_not_followed() -> None:
    with CaptureServer(Answer(200, b"inside", "text/plain")) as inside:
        redirect = Answer(302, b"", headers={"location": inside.url("/secret")})
        with CaptureServer(redirect) as outside, http_client(OutboundPolicy(allow_loopback=True)) as client:
            response = client.get(outside.url("/"))
        assert response.status_code == 302 and inside.requests == []


def test_proxy_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy the policy would see the proxy's address, not the target's."""
    with CaptureServer(Answer(200, b"direct", "text/plain")) as target, CaptureServer() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with http_client(OutboundPolicy(allow_loopback=True)) as client:
            assert client.get(target.url("/")).text == "direct"
        assert proxy.requests == []
