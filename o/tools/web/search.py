"""web_search: a provider interface, Exa and Tavily (hosted, keyed by the operator) and SearXNG (self-hosted).

Where a search goes is the operator's choice alone (``O_WEB_SEARCH_PROVIDER``, ``O_WEB_SEARCH_URL`` or the
provider's own API): nothing an agent says changes the endpoint, and the operator's key goes there and
nowhere else, the rule :mod:`o.llm.endpoints` keeps for model keys. Requests go through the outbound
policy's client, which follows no redirect (a redirect could carry the key elsewhere). A provider that
fails (refused, unreachable, an error status, an unreadable answer) is a :class:`SearchError` the model
sees as the tool's error; its key never appears in one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx2

from o.net.outbound import OutboundDenied
from o.net.transport import denial_in

EXA_URL = "https://api.exa.ai"
TAVILY_URL = "https://api.tavily.com"
MAX_RESULTS = 100
SNIPPET_CHARS = 1000
TEXT_CHARS = 10_000


class SearchError(Exception):
    """Why a search failed, said for the model."""


@dataclass(frozen=True)
class SearchQuery:
    """Letta's web_search arguments."""

    query: str
    num_results: int = 10
    category: str | None = None
    include_text: bool = False
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    start_published_date: str | None = None
    end_published_date: str | None = None
    user_location: str | None = None


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    published_date: str | None = None
    author: str | None = None
    text: str | None = None


class SearchProvider(Protocol):
    name: str

    def search(self, query: SearchQuery) -> list[SearchHit]: ...


def render(query: SearchQuery, provider: str, hits: list[SearchHit]) -> str:
    """What the model reads: the query and its results (title, URL, snippet; dates, authors, text when known)."""
    results = [{k: v for k, v in asdict(hit).items() if v not in (None, "")} for hit in hits]
    return json.dumps({"query": query.query, "provider": provider, "results": results}, ensure_ascii=False)


class _HTTPProvider:
    """One operator endpoint, called with the policy's client."""

    name = "search"

    def __init__(self, client: httpx2.Client, base_url: str, timeout_s: float) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, self.base_url + path, timeout=self.timeout_s, **kwargs)
        except OutboundDenied as exc:
            raise SearchError(f"{self.name} search endpoint refused: {exc.message}") from exc
        except httpx2.HTTPError as exc:
            denied = denial_in(exc)
            if denied is not None:
                raise SearchError(f"{self.name} search endpoint refused: {denied.message}") from exc
            raise SearchError(f"{self.name} search could not be reached: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise SearchError(f"{self.name} search failed: HTTP {response.status_code}: {_detail(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise SearchError(f"{self.name} search answered something that is not JSON") from exc


def _detail(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("error")
            if value:
                return str(value)[:300]
    return json.dumps(body)[:300]


def _results(body: Any, name: str) -> list[dict[str, Any]]:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise SearchError(f"{name} search answered without a list of results")
    return [r for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)]


def _cut(value: Any, limit: int) -> str:
    text = str(value or "").strip()
    return text if len(text) <= limit else text[:limit] + "…"


class ExaSearch(_HTTPProvider):
    """Exa's search API (what Letta's own web_search calls): POST /search with the ``x-api-key`` header."""

    name = "exa"

    def __init__(self, client: httpx2.Client, api_key: str, base_url: str | None, timeout_s: float) -> None:
        super().__init__(client, base_url or EXA_URL, timeout_s)
        self.api_key = api_key

    def search(self, query: SearchQuery) -> list[SearchHit]:
        body: dict[str, Any] = {
            "query": query.query,
            "numResults": query.num_results,
            "type": "auto",
            "contents": {"highlights": True, **({"text": {"maxCharacters": TEXT_CHARS}} if query.include_text else {})},
        }
        optional = {
            "category": query.category,
            "includeDomains": list(query.include_domains),
            "excludeDomains": list(query.exclude_domains),
            "startPublishedDate": query.start_published_date,
            "endPublishedDate": query.end_published_date,
            "userLocation": query.user_location,
        }
        body.update({k: v for k, v in optional.items() if v})
        answer = self._send("POST", "/search", json=body, headers={"x-api-key": self.api_key})
        return [
            SearchHit(
                title=_cut(r.get("title"), 300),
                url=r["url"],
                snippet=_cut(_exa_snippet(r), SNIPPET_CHARS),
                published_date=r.get("publishedDate"),
                author=r.get("author"),
                text=_cut(r.get("text"), TEXT_CHARS) if query.include_text else None,
            )
            for r in _results(answer, self.name)
        ]


def _exa_snippet(result: dict[str, Any]) -> str:
    highlights = result.get("highlights")
    if isinstance(highlights, list) and highlights:
        return " … ".join(map(str, highlights))
    return str(result.get("summary") or result.get("text") or "")


class TavilySearch(_HTTPProvider):
    """Tavily's search API: POST /search with a bearer key."""

    name = "tavily"

    def __init__(self, client: httpx2.Client, api_key: str, base_url: str | None, timeout_s: float) -> None:
        super().__init__(client, base_url or TAVILY_URL, timeout_s)
        self.api_key = api_key

    def search(self, query: SearchQuery) -> list[SearchHit]:
        body: dict[str, Any] = {
            "query": query.query,
            "max_results": min(query.num_results, 20),  # Tavily's own ceiling
            "topic": "news" if query.category == "news" else "general",
            "include_raw_content": query.include_text,
        }
        optional = {
            "include_domains": list(query.include_domains),
            "exclude_domains": list(query.exclude_domains),
            "start_date": (query.start_published_date or "")[:10],
            "end_date": (query.end_published_date or "")[:10],
        }
        body.update({k: v for k, v in optional.items() if v})
        answer = self._send("POST", "/search", json=body, headers={"authorization": f"Bearer {self.api_key}"})
        return [
            SearchHit(
                title=_cut(r.get("title"), 300),
                url=r["url"],
                snippet=_cut(r.get("content"), SNIPPET_CHARS),
                published_date=r.get("published_date"),
                text=_cut(r.get("raw_content"), TEXT_CHARS) if query.include_text else None,
            )
            for r in _results(answer, self.name)
        ]


class SearxngSearch(_HTTPProvider):
    """A self-hosted SearXNG instance's JSON API (GET /search?format=json; its settings must allow json).

    SearXNG has no domain or date filters of its own: domains are filtered here, on the results."""

    name = "searxng"

    def search(self, query: SearchQuery) -> list[SearchHit]:
        params = {"q": query.query, "format": "json"}
        if query.category == "news":
            params["categories"] = "news"
        answer = self._send("GET", "/search", params=params, headers={"accept": "application/json"})
        hits = [
            SearchHit(
                title=_cut(r.get("title"), 300),
                url=r["url"],
                snippet=_cut(r.get("content"), SNIPPET_CHARS),
                published_date=r.get("publishedDate"),
            )
            for r in _results(answer, self.name)
            if _domain_wanted(r["url"], query)
        ]
        return hits[: query.num_results]


def _domain_wanted(url: str, query: SearchQuery) -> bool:
    host = (urlsplit(url).hostname or "").lower()

    def under(domain: str) -> bool:
        domain = domain.lower().strip().removeprefix("www.")
        return host == domain or host.endswith("." + domain) or host == "www." + domain

    if query.include_domains and not any(map(under, query.include_domains)):
        return False
    return not any(map(under, query.exclude_domains))
