"""web_search's providers against a local server speaking their protocols (Exa, Tavily, SearXNG): the
query goes to the operator's endpoint with the operator's key, results come back with titles, URLs and
snippets, and a failing provider is an error the model reads (never the key)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from o.config import settings_from
from o.llm.keys import SettingsKeySource, StaticKeySource
from o.net.outbound import OutboundPolicy
from o.tools.sandbox.local import LocalProcessSandbox
from o.tools.web.search import SearchError, SearchQuery
from o.tools.web.tools import WebTools, provider
from tests.servers.search_server import CORPUS, SearchServer

LOOPBACK = OutboundPolicy(allow_loopback=True)
KEY = "exa-operator-key-123"


@pytest.fixture(params=["exa", "tavily"])
def hosted(request: pytest.FixtureRequest) -> Iterator[SearchServer]:
    with SearchServer(request.param, key=KEY) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def searxng() -> Iterator[SearchServer]:
    with SearchServer("searxng") as server:
        yield server  # type: ignore[misc]


def tools_for(server: SearchServer, key: str | None = KEY, policy: OutboundPolicy = LOOPBACK) -> WebTools:
    environ = {"O_WEB_SEARCH_PROVIDER": server.kind, "O_WEB_SEARCH_URL": server.origin}
    keys = StaticKeySource({server.kind: key} if key else {})
    return WebTools.from_settings(settings_from(environ), LocalProcessSandbox(), policy, keys)


def test_a_hosted_provider_gets_the_query_and_the_key(hosted: SearchServer) -> None:
    tools = tools_for(hosted)
    assert "web_search" in tools.offered()
    result = tools.run(
        "web_search",
        {"query": "letta agents", "num_results": 2, "include_domains": ["letta.com"], "category": "news"},
    )
    assert result.status == "success", result
    answer = json.loads(result.func_return)
    assert answer["query"] == "letta agents" and answer["provider"] == hosted.kind
    assert [(r["title"], r["url"], r["snippet"]) for r in answer["results"]] == [c for c in CORPUS[:2]]
    [request] = hosted.seen
    assert request["path"] == "/search"
    if hosted.kind == "exa":
        assert request["headers"]["x-api-key"] == KEY
        body = request["body"]
        assert (body["query"], body["numResults"], body["includeDomains"], body["category"]) == (
            "letta agents",
            2,
            ["letta.com"],
            "news",
        )
        assert answer["results"][0]["published_date"].startswith("2025-01-02")
    else:
        assert request["headers"]["authorization"] == f"Bearer {KEY}"
        body = request["body"]
        assert (body["query"], body["max_results"], body["include_domains"], body["topic"]) == (
            "letta agents",
            2,
            ["letta.com"],
            "news",
        )


def test_full_text_only_when_asked(hosted: SearchServer) -> None:
    tools = tools_for(hosted)
    plain = json.loads(tools.run("web_search", {"query": "q"}).func_return)
    assert all("text" not in r for r in plain["results"])
    full = json.loads(tools.run("web_search", {"query": "q", "include_text": True}).func_return)
    assert full["results"][0]["text"] == f"Full text of {CORPUS[0][0]}."


def test_provider_errors_are_tool_errors_without_the_key(hosted: SearchServer) -> None:
    wrong = tools_for(hosted, key="not-the-key").run("web_search", {"query": "q"})
    assert wrong.status == "error" and "HTTP 401" in wrong.func_return
    assert "not-the-key" not in wrong.func_return and KEY not in wrong.func_return
    hosted.fail_with = 503
    failing = tools_for(hosted).run("web_search", {"query": "q"})
    assert failing.status == "error" and "HTTP 503" in failing.func_return and "scripted failure" in failing.func_return


def test_the_key_goes_nowhere_but_the_operator_endpoint(hosted: SearchServer) -> None:
    # the policy refuses the operator's endpoint (loopback on AWS): no request is made at all
    refused = tools_for(hosted, policy=OutboundPolicy()).run("web_search", {"query": "q"})
    assert refused.status == "error" and "loopback" in refused.func_return
    assert hosted.seen == []
    # nothing the model passes names another endpoint
    extra = tools_for(hosted).run("web_search", {"query": "q", "url": "http://evil.example/"})
    assert extra.status == "error" and "unexpected arguments" in extra.func_return
    assert hosted.seen == []


def test_searxng_json_api_with_domain_filters(searxng: SearchServer) -> None:
    tools = tools_for(searxng, key=None)
    answer = json.loads(tools.run("web_search", {"query": "letta", "exclude_domains": ["example.org"]}).func_return)
    assert [r["url"] for r in answer["results"]] == [
        "https://docs.letta.com/agents",
        "https://github.com/letta-ai/letta",
    ]
    only = json.loads(tools.run("web_search", {"query": "letta", "include_domains": ["github.com"]}).func_return)
    assert [r["title"] for r in only["results"]] == ["Letta on GitHub"]
    assert searxng.seen[0]["params"] == {"q": "letta", "format": "json"}
    searxng.fail_with = 429
    limited = tools.run("web_search", {"query": "letta"})
    assert limited.status == "error" and "HTTP 429" in limited.func_return


def test_an_unreachable_provider_is_a_tool_error() -> None:
    with SearchServer("searxng") as server:
        origin = server.origin
    environ = {"O_WEB_SEARCH_PROVIDER": "searxng", "O_WEB_SEARCH_URL": origin}
    tools = WebTools.from_settings(settings_from(environ), LocalProcessSandbox(), LOOPBACK, StaticKeySource({}))
    result = tools.run("web_search", {"query": "q"})
    assert result.status == "error" and "could not be reached" in result.func_return


def test_web_search_is_offered_only_with_a_provider() -> None:
    sandbox = LocalProcessSandbox()
    none = WebTools.from_settings(settings_from({}), sandbox, LOOPBACK, StaticKeySource({}))
    assert none.offered() == {"run_code", "fetch_webpage"}
    unconfigured = none.run("web_search", {"query": "q"})
    assert unconfigured.status == "error" and "no web search provider" in unconfigured.func_return
    # a hosted provider without its key offers nothing; with the key (as the operator's settings hold it) it does
    exa = settings_from({"O_WEB_SEARCH_PROVIDER": "exa"})
    assert provider(exa, SettingsKeySource(exa.keys), LOOPBACK) is None
    keyed = settings_from({"O_WEB_SEARCH_PROVIDER": "exa", "EXA_API_KEY": "k"})
    searcher = provider(keyed, SettingsKeySource(keyed.keys), LOOPBACK)
    assert searcher is not None and searcher.name == "exa"


def test_a_provider_answer_without_results_is_an_error(searxng: SearchServer) -> None:
    tools = tools_for(searxng, key=None)
    assert tools.searcher is not None
    searxng.fail_with = 200  # a 200 whose body has no results
    with pytest.raises(SearchError, match="without a list of results"):
        tools.searcher.search(SearchQuery("q"))
    assert tools.run("web_search", {"query": "q"}).status == "error"
