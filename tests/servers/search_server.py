"""A local server speaking web search providers' wire protocols, for web_search.

- Exa: ``POST /search`` with the ``x-api-key`` header, a JSON body (``query``, ``numResults``,
  ``includeDomains``, ...), answering ``{"results": [{"title", "url", "publishedDate", "author",
  "highlights", "text"}]}``.
- Tavily: ``POST /search`` with ``Authorization: Bearer <key>``, answering ``{"query", "results":
  [{"title", "url", "content", "score", "raw_content"}]}``.
- SearXNG: ``GET /search?q=...&format=json``, answering ``{"query", "results": [{"title", "url",
  "content", "engine"}]}``; without ``format=json`` it answers 403, as an instance that does not allow
  JSON does.

A wrong or missing key is a 401 with the provider's error body. ``fail_with`` makes every search
answer that status. Every request is recorded (path, headers, body or query) for the test to check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.base import Handler, ScriptedServer

# what every search finds: (title, url, snippet)
CORPUS: tuple[tuple[str, str, str], ...] = (
    ("Letta agents", "https://docs.letta.com/agents", "Stateful agents with memory."),
    ("Python sandboxing", "https://example.org/sandbox", "Running untrusted code safely."),
    ("Letta on GitHub", "https://github.com/letta-ai/letta", "The Letta repository."),
)


class SearchServer(ScriptedServer):
    def __init__(self, kind: str, key: str | None = None) -> None:
        super().__init__()
        assert kind in ("exa", "tavily", "searxng")
        self.kind = kind
        self.key = key
        self.fail_with: int | None = None
        self.seen: list[dict[str, Any]] = []

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        self.seen.append({"method": "POST", "path": handler.path, "headers": dict(handler.headers), "body": body})
        if self.kind == "searxng" or urlsplit(handler.path).path != "/search":
            handler.send_json(404, {"error": "not found"})
            return
        sent_key = handler.headers.get("x-api-key") if self.kind == "exa" else _bearer(handler)
        if sent_key != self.key:
            handler.send_json(
                401,
                {"error": "Invalid API key"}
                if self.kind == "exa"
                else {"detail": {"error": "Unauthorized: missing or invalid API key."}},
            )
            return
        if self.fail_with is not None:
            handler.send_json(self.fail_with, {"error": f"scripted failure {self.fail_with}"})
            return
        limit = int(body.get("numResults") or body.get("max_results") or 10)
        if self.kind == "exa":
            results = [
                {
                    "title": t,
                    "url": u,
                    "publishedDate": "2025-01-02T00:00:00.000Z",
                    "author": "O tests",
                    "highlights": [s],
                    **({"text": f"Full text of {t}."} if "text" in body.get("contents", {}) else {}),
                }
                for t, u, s in CORPUS
            ]
            handler.send_json(200, {"requestId": "req-1", "results": results[:limit]})
        else:
            results = [
                {
                    "title": t,
                    "url": u,
                    "content": s,
                    "score": 0.9,
                    "raw_content": f"Full text of {t}." if body.get("include_raw_content") else None,
                }
                for t, u, s in CORPUS
            ]
            handler.send_json(200, {"query": body.get("query"), "results": results[:limit], "response_time": 0.01})

    def handle_get(self, handler: Handler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.seen.append({"method": "GET", "path": parts.path, "headers": dict(handler.headers), "params": params})
        if self.kind != "searxng" or parts.path != "/search":
            handler.send_json(404, {"error": "not found"})
            return
        if params.get("format") != "json":
            handler.send_json(403, {"error": "format not allowed"})
            return
        if self.fail_with is not None:
            handler.send_json(self.fail_with, {"error": f"scripted failure {self.fail_with}"})
            return
        results = [{"title": t, "url": u, "content": s, "engine": "duckduckgo", "score": 1.0} for t, u, s in CORPUS]
        handler.send_json(200, {"query": params.get("q"), "number_of_results": len(results), "results": results})


def _bearer(handler: Handler) -> str | None:
    value = handler.headers.get("authorization") or ""
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None
