"""What runs the three outside-world built-ins (:mod:`o.tools.web.definitions`) for a process.

An organization holds a tool record for each (tool_type ``letta_builtin``, :mod:`o.tools.base`) when this
process offers it: ``run_code`` and ``fetch_webpage`` always (every process has a sandbox and the
outbound policy), ``web_search`` only when the operator configured a search provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from o.config import Settings
from o.llm.keys import KeySource
from o.net.outbound import OutboundPolicy
from o.net.transport import http_client
from o.tools.sandbox.base import Limits, Sandbox, ToolResult
from o.tools.web import code, search
from o.tools.web.definitions import WEB_TOOLS, WebTool
from o.tools.web.fetch import FetchError, FetchLimits, WebFetcher


def provider(settings: Settings, keys: KeySource, policy: OutboundPolicy) -> search.SearchProvider | None:
    """The operator's search provider, or None when none is configured (or its key is missing)."""
    web = settings.web
    if web.search_provider is None:
        return None
    client = http_client(policy)
    if web.search_provider == "searxng":
        assert web.search_url  # the settings require it
        return search.SearxngSearch(client, web.search_url, web.search_timeout_s)
    key = keys.api_key(web.search_provider)
    if not key:
        return None
    kind = search.ExaSearch if web.search_provider == "exa" else search.TavilySearch
    return kind(client, key, web.search_url, web.search_timeout_s)


@dataclass
class WebTools:
    """Runs the outside-world built-ins for one process."""

    fetcher: WebFetcher
    sandbox: Sandbox
    code_limits: Limits = field(default_factory=Limits)
    searcher: search.SearchProvider | None = None

    @classmethod
    def from_settings(cls, settings: Settings, sandbox: Sandbox, policy: OutboundPolicy, keys: KeySource) -> WebTools:
        web = settings.web
        limits = FetchLimits(web.fetch_max_bytes, web.fetch_timeout_s, web.fetch_max_redirects, web.fetch_max_chars)
        code_limits = Limits(
            cpu_seconds=max(1, int(web.code_wall_seconds)),
            wall_seconds=web.code_wall_seconds,
            memory_bytes=web.code_memory_mb * 1024 * 1024,
        )
        return cls(WebFetcher(policy, limits), sandbox, code_limits, provider(settings, keys, policy))

    def offered(self) -> frozenset[str]:
        names = {"run_code", "fetch_webpage"}
        if self.searcher is not None:
            names.add("web_search")
        return frozenset(names)

    def run(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Run web tool ``name``; every failure is an error result for the model, never an exception."""
        started = time.monotonic()
        tool = WEB_TOOLS.get(name)
        problem = _argument_problem(tool, name, args)
        if problem is None:
            runner = self._runners()[name]
            try:
                result = runner(args)
            except (FetchError, search.SearchError, ValueError, TypeError) as exc:
                problem = str(exc)
            else:
                return _timed(result, started)
        return ToolResult(
            "error",
            f"Error executing tool {name}: {problem}",
            message=problem,
            duration_ms=(time.monotonic() - started) * 1000,
        )

    def _runners(self) -> dict[str, Callable[[dict[str, Any]], ToolResult]]:
        return {"run_code": self._run_code, "fetch_webpage": self._fetch, "web_search": self._search}

    def _run_code(self, args: dict[str, Any]) -> ToolResult:
        return code.run_code(self.sandbox, self.code_limits, str(args["code"]), str(args.get("language") or "python"))

    def _fetch(self, args: dict[str, Any]) -> ToolResult:
        return ToolResult("success", self.fetcher.markdown(str(args["url"])))

    def _search(self, args: dict[str, Any]) -> ToolResult:
        if self.searcher is None:
            raise search.SearchError("no web search provider is configured on this server")
        query = search.SearchQuery(
            query=str(args["query"]),
            num_results=max(1, min(int(args.get("num_results") or 10), search.MAX_RESULTS)),
            category=args.get("category") or None,
            include_text=bool(args.get("include_text")),
            include_domains=tuple(map(str, args.get("include_domains") or ())),
            exclude_domains=tuple(map(str, args.get("exclude_domains") or ())),
            start_published_date=args.get("start_published_date") or None,
            end_published_date=args.get("end_published_date") or None,
            user_location=args.get("user_location") or None,
        )
        hits = self.searcher.search(query)
        return ToolResult("success", search.render(query, self.searcher.name, hits))


def _argument_problem(tool: WebTool | None, name: str, args: Any) -> str | None:
    if tool is None:
        return f"{name!r} is not a web tool"
    if not isinstance(args, dict):
        return "arguments must be a JSON object"
    unknown = set(args) - set(tool.parameters["properties"])
    if unknown:
        return f"{name}() got unexpected arguments: {sorted(unknown)}"
    missing = [p for p in tool.parameters["required"] if args.get(p) in (None, "")]
    return f"{name}() missing required arguments: {missing}" if missing else None


def _timed(result: ToolResult, started: float) -> ToolResult:
    if result.duration_ms:
        return result
    return ToolResult(
        result.status,
        result.func_return,
        result.stdout,
        result.stderr,
        result.message,
        (time.monotonic() - started) * 1000,
        result.isolation,
    )
