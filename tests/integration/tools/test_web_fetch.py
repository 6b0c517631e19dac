"""fetch_webpage against a real local website: Markdown out, and every cap and refusal of the outbound
policy, on the local policy (loopback allowed) and on the AWS one (loopback and private denied)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from o.net.outbound import OutboundPolicy
from o.net.transport import resolve
from o.tools.web.fetch import FetchError, FetchLimits, WebFetcher
from tests.servers.web_server import WebServer

LIMITS = FetchLimits(max_bytes=1024 * 1024, timeout_s=1.0, max_redirects=3, max_chars=5000)
# the AWS policy: nothing internal, but the operator allowed this one name (say, a partner site)
AWS = OutboundPolicy.allowing(["site.test"], allow_loopback=False)


def site_resolver(host: str, port: int) -> list[str]:
    """site.test is this machine; every other name resolves as usual."""
    return ["127.0.0.1"] if host == "site.test" else resolve(host, port)


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer(size=3 * 1024 * 1024, delay=3.0) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def local() -> WebFetcher:
    return WebFetcher(OutboundPolicy(allow_loopback=True), LIMITS)


@pytest.fixture
def aws() -> WebFetcher:
    return WebFetcher(AWS, LIMITS, resolver=site_resolver)


def test_a_page_becomes_its_main_content_in_markdown(site: WebServer, local: WebFetcher) -> None:
    text = local.markdown(f"{site.origin}/article")
    assert text.startswith("# The Analytical Engine")
    assert "**first program**" in text
    assert f"[her notes]({site.origin}/notes)" in text  # links made absolute
    assert "- Designed by Babbage" in text
    for boilerplate in ("tracker", "color: red", "Menu item", "Copyright footer", "Search", "About"):
        assert boilerplate not in text, boilerplate


def test_text_and_json_are_returned_as_they_are(site: WebServer, local: WebFetcher) -> None:
    assert local.markdown(f"{site.origin}/plain") == "just text\n"
    assert json.loads(local.markdown(f"{site.origin}/data.json")) == {"answer": 42}


def test_what_is_no_page_is_refused(site: WebServer, local: WebFetcher) -> None:
    with pytest.raises(FetchError, match="image/png, not a web page"):
        local.fetch(f"{site.origin}/image.png")
    with pytest.raises(FetchError, match="HTTP 404"):
        local.fetch(f"{site.origin}/missing")
    for url in ("file:///etc/passwd", "ftp://example.org/x", "gopher://x", "http://"):
        with pytest.raises(FetchError):
            local.fetch(url)


def test_a_huge_page_is_cut_off_at_the_size_limit(site: WebServer, local: WebFetcher) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger than the 1048576-byte limit"):
        local.fetch(f"{site.origin}/huge")
    with pytest.raises(FetchError, match="3145728 bytes, over the 1048576-byte limit"):
        local.fetch(f"{site.origin}/huge-declared")
    assert time.monotonic() - started < 5


def test_a_slow_page_is_given_up_at_the_time_limit(site: WebServer, local: WebFetcher) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="within 1 s"):
        local.fetch(f"{site.origin}/slow")
    assert time.monotonic() - started < 2.5


def test_redirects_are_followed_a_few_times_only(site: WebServer, local: WebFetcher) -> None:
    assert local.markdown(f"{site.origin}/go?to=/article").startswith("# The Analytical Engine")
    with pytest.raises(FetchError, match="more than 3 redirects"):
        local.fetch(f"{site.origin}/loop")
    assert site.paths.count("/loop") == 4


def test_long_markdown_is_cut_with_a_note(site: WebServer) -> None:
    short = WebFetcher(OutboundPolicy(allow_loopback=True), FetchLimits(max_chars=100))
    text = short.markdown(f"{site.origin}/article")
    assert len(text) < 200 and text.endswith("characters]") and "truncated" in text


def test_on_the_aws_policy_a_redirect_to_loopback_is_refused(site: WebServer, aws: WebFetcher) -> None:
    allowed = f"http://site.test:{site.port}"
    # the allowed name works, and so does a redirect that stays on it
    assert aws.markdown(f"{allowed}/article").startswith("# The Analytical Engine")
    assert aws.markdown(f"{allowed}/go?to=/plain") == "just text\n"
    before = len(site.paths)
    # a redirect to 127.0.0.1 (a literal) and to localhost (a name that resolves to loopback)
    with pytest.raises(FetchError, match=r"127\.0\.0\.1 is a loopback address"):
        aws.fetch(f"{allowed}/go?to=http://127.0.0.1:{site.port}/article")
    with pytest.raises(FetchError, match="loopback address"):
        aws.fetch(f"{allowed}/go?to=http://localhost:{site.port}/article")
    # the metadata service and private addresses, named directly
    with pytest.raises(FetchError, match="link-local"):
        aws.fetch("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchError, match="private"):
        aws.fetch("http://10.0.0.1/")
    # the refused hops were never requested: only the two redirects reached the server
    assert site.paths[before:] == ["/go", "/go"]
    # and the page itself, on the address it is served from, is refused on this policy
    with pytest.raises(FetchError, match="loopback"):
        aws.fetch(f"{site.origin}/article")
