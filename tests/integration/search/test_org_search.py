"""messages.search and passages.search across an organization's agents, through the strict letta-client:
hybrid ranking over every agent, filters, search modes, bad input named, and a hostile tenant that plants
look-alike data never sees (nor leaks into) another organization's results."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from letta_client import BadRequestError, Letta, NotFoundError, UnprocessableEntityError

from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.conftest import new_org_key
from tests.integration.steps.conftest import strict_client
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _remember(api: TestClient, agent_id: str, text: str, tags: list[str] | None = None) -> str:
    made = api.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": text, "tags": tags or []})
    assert made.status_code == 200, made.text
    return made.json()[0]["id"]


def _say(api: TestClient, server: OpenAIServer, agent_id: str, question: str, answer: str) -> None:
    server.push(call("send_message", message=answer))
    sent = api.post(f"/v1/agents/{agent_id}/messages", json={"messages": [{"role": "user", "content": question}]})
    assert sent.status_code == 200, sent.text


@pytest.fixture
def hostile(db: Database, base_url: str, api: TestClient) -> tuple[Letta, TestClient]:
    key = new_org_key(db)
    return strict_client(base_url, key), TestClient(api.app, headers={"Authorization": f"Bearer {key}"})


def test_passage_search_ranks_across_agents_and_stays_in_the_tenant(
    api: TestClient, letta: Letta, openai_server: OpenAIServer, hostile: tuple[Letta, TestClient]
) -> None:
    a = create_agent(api, openai_server)["id"]
    b = create_agent(api, openai_server)["id"]
    volcano = _remember(api, a, "The Eyjafjallajokull volcano erupted in Iceland in 2010.", ["geo"])
    glacier = _remember(api, b, "Vatnajokull is the largest glacier in Iceland.", ["geo", "ice"])
    _remember(api, b, "My favourite pasta is carbonara.", ["food"])
    other_letta, other_api = hostile
    planted_agent = create_agent(other_api, openai_server)["id"]
    planted = _remember(other_api, planted_agent, "Iceland volcano eruption Eyjafjallajokull 2010 secret.", ["geo"])

    hits = letta.passages.search(query="volcano eruption in Iceland", limit=5)
    ids = [h.passage.id for h in hits]
    assert ids[0] == volcano and glacier in ids and planted not in ids
    assert all(h.passage.organization_id == hits[0].passage.organization_id for h in hits)
    assert hits[0].score >= hits[-1].score
    in_b = letta.passages.search(query="Iceland", agent_id=b, limit=5)
    assert in_b[0].passage.id == glacier and all(h.passage.agent_id == b for h in in_b)
    assert [h.passage.id for h in letta.passages.search(query="Iceland", tags=["ice"], limit=5)] == [glacier]
    both = letta.passages.search(query="Iceland", tags=["geo", "ice"], tag_match_mode="all")
    assert [h.passage.id for h in both] == [glacier]
    newest = letta.passages.search(limit=2)  # no query: the newest passages
    assert len(newest) == 2 and planted not in [h.passage.id for h in newest]
    assert letta.passages.search(query="Iceland", start_date="2999-01-01") == []

    # the hostile tenant sees only its own plant, and cannot name our agent
    assert [h.passage.id for h in other_letta.passages.search(query="Iceland glacier volcano")] == [planted]
    with pytest.raises(NotFoundError):
        other_letta.passages.search(query="Iceland", agent_id=a)


def test_message_search_modes_filters_and_tenancy(
    api: TestClient, letta: Letta, openai_server: OpenAIServer, hostile: tuple[Letta, TestClient]
) -> None:
    a = create_agent(api, openai_server)["id"]
    b = create_agent(api, openai_server)["id"]
    _say(api, openai_server, a, "Where did we park the blue bicycle?", "Behind the library.")
    _say(api, openai_server, b, "What is the recipe for lemon cake?", "Lemons, sugar, flour.")
    other_letta, other_api = hostile
    planted_agent = create_agent(other_api, openai_server)["id"]
    _say(other_api, openai_server, planted_agent, "blue bicycle blue bicycle parked where?", "secret garage")

    hits = letta.messages.search(query="blue bicycle", limit=5)
    assert hits and hits[0].message_type == "user_message" and hits[0].agent_id == a
    assert "bicycle" in hits[0].content
    assert all(h.agent_id in (a, b) for h in hits)
    assert "secret garage" not in [getattr(h, "content", None) for h in hits]
    replies = letta.messages.search(query="library", search_mode="fts")
    assert [(r.message_type, r.content) for r in replies] == [("assistant_message", "Behind the library.")]
    assert all(h.agent_id == b for h in letta.messages.search(query="cake", agent_id=b, search_mode="vector"))
    assert letta.messages.search(query="bicycle", end_date="2000-01-01") == []

    others = other_letta.messages.search(query="blue bicycle library lemon cake", limit=10)
    assert others and all(h.agent_id == planted_agent for h in others)
    with pytest.raises(NotFoundError):
        other_letta.messages.search(query="bicycle", agent_id=a)


def test_bad_search_input_is_named(letta: Letta) -> None:
    with pytest.raises(UnprocessableEntityError, match="query"):
        letta.messages.search(query="")
    with pytest.raises(UnprocessableEntityError, match="search_mode"):
        letta.messages.search(query="x", search_mode="psychic")  # type: ignore[arg-type]
    with pytest.raises(UnprocessableEntityError, match="limit"):
        letta.passages.search(query="x", limit=0)
    with pytest.raises(UnprocessableEntityError, match="archive_id"):
        letta.passages.search(query="x", archive_id="archive-1")
    with pytest.raises(NotFoundError, match="conversation"):
        letta.messages.search(query="x", conversation_id="conv-1")
    with pytest.raises((UnprocessableEntityError, BadRequestError), match="start"):
        letta.passages.search(query="x", start_date="2020-01-02", end_date="2020-01-01")
