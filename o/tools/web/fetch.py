"""fetch_webpage: one URL, fetched through the outbound URL policy and returned as Markdown.

Every hop is checked: the URL before the request (scheme, literal addresses) and the address connected
to (:mod:`o.net.transport`, which also refuses a name that resolves to an internal address), so a
redirect to 127.0.0.1 or the metadata service is refused like a first request would be. The client
never follows a redirect itself; this module does, at most ``max_redirects`` times, re-checking each.
The body is read in pieces and the fetch stops at ``max_bytes``; the whole fetch, redirects included,
must finish within ``timeout_s``. Only pages (HTML), text and JSON are read.

Extraction: BeautifulSoup (stdlib ``html.parser``, no lxml) picks the page's main content (``main``,
``article``, ``role=main``, else the body) and drops scripts, styles, navigation, forms and asides;
markdownify writes the rest as Markdown. trafilatura extracts articles better, but brings lxml,
dateparser and babel (~60 MB) into a Lambda layer that must stay under 250 MB; markdownify and bs4
are ~0.7 MB of pure Python.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import httpx2

from o.net.outbound import OutboundDenied, OutboundPolicy
from o.net.transport import Resolver, denial_in, http_client, resolve

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

USER_AGENT = "O-fetch_webpage/1 (+https://docs.letta.com)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown", "text/csv"})
JSON_TYPES = frozenset({"application/json", "application/ld+json"})
# what is dropped from the page before it is written as Markdown: not content
_NOT_CONTENT = ("script", "style", "noscript", "template", "svg", "canvas", "iframe", "form", "button", "nav", "aside")
_BLANK_LINES = re.compile(r"\n{3,}")


class FetchError(Exception):
    """Why a page could not be fetched, said for the model."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 5 * 1024 * 1024
    timeout_s: float = 15.0
    max_redirects: int = 5
    max_chars: int = 50_000


@dataclass(frozen=True)
class Page:
    url: str
    content_type: str
    body: bytes
    charset: str | None


class WebFetcher:
    """Fetches pages for one process, under its outbound policy."""

    def __init__(self, policy: OutboundPolicy, limits: FetchLimits, *, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.limits = limits
        self._resolver = resolver
        self._client: httpx2.Client | None = None
        self._making = threading.Lock()

    @property
    def client(self) -> httpx2.Client:
        # made at the first fetch, not at start-up: its TLS context loads the CA bundle (tens of ms of a
        # Lambda's cold start), and most processes never fetch a page
        with self._making:
            if self._client is None:
                self._client = http_client(self.policy, resolver=self._resolver)
            return self._client

    def markdown(self, url: str) -> str:
        """The page at ``url`` as Markdown (cut to ``max_chars``), or :class:`FetchError`."""
        page = self.fetch(url)
        if page.content_type in HTML_TYPES:
            text = html_to_markdown(page.body, page.url, page.charset)
        elif page.content_type in JSON_TYPES:
            text = _json_text(page)
        else:
            text = _decode(page.body, page.charset)
        if len(text) > self.limits.max_chars:
            text = text[: self.limits.max_chars] + f"\n\n[truncated: the page has {len(text)} characters]"
        return text

    def fetch(self, url: str) -> Page:
        deadline = time.monotonic() + self.limits.timeout_s
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            refusal = self.policy.url_refusal(current)
            if refusal is not None:
                raise FetchError(refusal)
            location = self._get(current, deadline)
            if isinstance(location, Page):
                return location
            current = urljoin(current, location)
        raise FetchError(f"more than {self.limits.max_redirects} redirects, last to {current}")

    def _get(self, url: str, deadline: float) -> Page | str:
        """The page, or where it redirects to."""
        try:
            with self.client.stream(
                "GET", url, headers=_HEADERS, timeout=httpx2.Timeout(_remaining(deadline))
            ) as response:
                if response.status_code in REDIRECTS and response.headers.get("location"):
                    return str(response.headers["location"])
                if response.status_code >= 400:
                    raise FetchError(f"{url} answered HTTP {response.status_code}")
                content_type, charset = _content_type(response.headers.get("content-type", ""))
                if content_type not in HTML_TYPES | TEXT_TYPES | JSON_TYPES:
                    raise FetchError(f"{url} is {content_type or 'of no content type'}, not a web page or text")
                return Page(str(response.url), content_type, self._body(response, url, deadline), charset)
        except OutboundDenied as exc:
            raise FetchError(exc.message) from exc
        except httpx2.HTTPError as exc:
            denied = denial_in(exc)
            if denied is not None:
                raise FetchError(denied.message) from exc
            if isinstance(exc, httpx2.TimeoutException):
                raise FetchError(f"{url} did not answer within {self.limits.timeout_s:g} s") from exc
            raise FetchError(f"{url} could not be fetched: {type(exc).__name__}: {exc}") from exc

    def _body(self, response: httpx2.Response, url: str, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise FetchError(f"{url} is {int(declared)} bytes, over the {self.limits.max_bytes}-byte limit")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise FetchError(f"{url} is larger than the {self.limits.max_bytes}-byte limit")
            if time.monotonic() > deadline:
                raise FetchError(f"{url} did not arrive within {self.limits.timeout_s:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


_HEADERS = {
    "user-agent": USER_AGENT,
    "accept": "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.8,*/*;q=0.1",
}


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("the fetch ran out of time")
    return left


def _content_type(header: str) -> tuple[str, str | None]:
    kind, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return kind.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def _json_text(page: Page) -> str:
    text = _decode(page.body, page.charset)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def html_to_markdown(body: bytes, url: str, charset: str | None = None) -> str:
    """The main content of an HTML page as Markdown, its title first; links made absolute."""
    # imported on the first page, not with the module: half a second off every process's start
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(body, "html.parser", from_encoding=charset)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    root = _main_content(soup)
    for tag in root.find_all(_NOT_CONTENT):
        tag.decompose()
    if root.name in ("body", "[document]"):
        # the page's own banner and footer; an article's header (its title) stays
        for tag in root.find_all(["header", "footer"], recursive=False):
            tag.decompose()
    for link in root.find_all("a", href=True):
        href = str(link["href"])
        link["href"] = "" if href.lower().startswith("javascript:") else urljoin(url, href)
    for image in root.find_all("img", src=True):
        image["src"] = urljoin(url, str(image["src"]))
    text = MarkdownConverter(heading_style="ATX", bullets="-").convert_soup(root)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    return f"# {title}\n\n{text}" if title and title not in text[: len(title) + 200] else text


def _main_content(soup: BeautifulSoup) -> Tag:
    from bs4 import Tag

    for found in (soup.find("main"), soup.find("article"), soup.find(True, attrs={"role": "main"}), soup.body):
        if isinstance(found, Tag):
            return found
    return soup
