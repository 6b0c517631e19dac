"""Archives through the real letta-client in strict mode: CRUD, passages (one, a batch, delete), attaching
to agents; an attached archive is searched by the agent's API search and its archival_memory_search tool,
stored once for every agent that attaches it; bad input named; another organization's ids not found."""

from __future__ import annotations

import json

import httpx
import letta_client
import pytest
from fastapi.testclient import TestClient
from letta_client import Letta

from o.store.db import Database
from tests.integration.agent.conftest import create_agent, say
from tests.integration.conftest import new_org_key
from tests.integration.steps.conftest import strict_client
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

SECTIONS = [
    "Chapter one: the lighthouse keeper Oskar lived alone on the northern island.",
    "Every winter the supply boat brought him lamp oil, flour and a crate of oranges.",
    "Chapter two: a storm wrecked the boat, and Oskar rowed out to save the crew.",
]


def _search(letta: Letta, agent_id: str, query: str) -> list[str]:
    found = letta.agents.passages.search(agent_id, query=query, top_k=5)
    return [r.content for r in found.results]


def test_archive_crud_and_listing(letta: Letta, api: TestClient, openai_server: OpenAIServer) -> None:
    created = letta.archives.create(name="handbook", description="the staff handbook")
    assert created.id.startswith("archive-") and created.name == "handbook"
    assert created.embedding_config is not None and created.embedding_config.embedding_dim == 384
    assert letta.archives.retrieve(created.id).description == "the staff handbook"

    other = letta.archives.create(name="minutes")
    names = [a.name for a in letta.archives.list(order="asc")]
    assert names == ["handbook", "minutes"]
    assert [a.id for a in letta.archives.list(name="minutes")] == [other.id]
    first = letta.archives.list(order="asc", limit=1)  # one page (iterating would follow the cursor)
    assert [a.id for a in first.items] == [created.id]
    assert [a.id for a in letta.archives.list(order="asc", after=created.id)] == [other.id]

    updated = letta.archives.update(created.id, name="staff handbook")
    assert updated.name == "staff handbook" and updated.description == "the staff handbook"

    agent = create_agent(api, openai_server)
    letta.agents.archives.attach(other.id, agent_id=agent["id"])
    assert [a.id for a in letta.archives.list(agent_id=agent["id"])] == [other.id]
    letta.agents.archives.detach(other.id, agent_id=agent["id"])
    assert list(letta.archives.list(agent_id=agent["id"])) == []

    letta.archives.delete(created.id)
    with pytest.raises(letta_client.NotFoundError):
        letta.archives.retrieve(created.id)
    assert [a.id for a in letta.archives.list()] == [other.id]


def test_passages_attach_and_search(letta: Letta, api: TestClient, openai_server: OpenAIServer, db: Database) -> None:
    archive = letta.archives.create(name="novel")
    one = letta.archives.passages.create(archive.id, text="The keeper's dog was called Birk.", tags=["dog"])
    assert one.archive_id == archive.id and one.tags == ["dog"] and one.id
    batch = letta.archives.passages.create_many(archive.id, passages=[{"text": t} for t in SECTIONS])
    assert [p.text for p in batch] == SECTIONS and all(p.archive_id == archive.id for p in batch)

    first = create_agent(api, openai_server)
    second = create_agent(api, openai_server)
    # the agents' own memory
    api.post(f"/v1/agents/{first['id']}/archival-memory", json={"text": "The user likes oranges."})
    assert _search(letta, first["id"], "lighthouse keeper island") == ["The user likes oranges."]

    for agent in (first, second):
        letta.agents.archives.attach(archive.id, agent_id=agent["id"])
    letta.agents.archives.attach(archive.id, agent_id=first["id"])  # again: nothing changes
    found = _search(letta, first["id"], "lighthouse keeper island")
    assert found[0] == SECTIONS[0]
    # its own passages and the archive's, in one ranking
    assert set(_search(letta, first["id"], "oranges")) >= {"The user likes oranges.", SECTIONS[1]}
    assert _search(letta, second["id"], "oranges")[0] == SECTIONS[1]
    assert "The user likes oranges." not in _search(letta, second["id"], "oranges")
    # the dog passage is found by its tag too
    tagged = letta.agents.passages.search(first["id"], query="dog", tags=["dog"])
    assert [r.content for r in tagged.results] == ["The keeper's dog was called Birk."]
    # stored once for both agents
    with db.transaction() as conn:
        row = conn.execute("SELECT count(*) AS n FROM passages WHERE archive_id = %s", (archive.id,)).fetchone()
    assert row is not None and row["n"] == 4
    # the archive's passages are not the agent's own (list, delete)
    own = api.get(f"/v1/agents/{first['id']}/archival-memory").json()
    assert [p["text"] for p in own] == ["The user likes oranges."]
    assert api.delete(f"/v1/agents/{first['id']}/archival-memory/{one.id}").status_code == 404
    listed = api.get(f"/v1/archives/{archive.id}/passages").json()
    assert [p["text"] for p in listed] == ["The keeper's dog was called Birk.", *SECTIONS]

    letta.archives.passages.delete(one.id, archive_id=archive.id)
    assert "The keeper's dog was called Birk." not in _search(letta, first["id"], "dog Birk")
    letta.agents.archives.detach(archive.id, agent_id=first["id"])
    assert SECTIONS[0] not in _search(letta, first["id"], "lighthouse keeper island")
    assert _search(letta, second["id"], "lighthouse keeper island")[0] == SECTIONS[0]
    letta.archives.delete(archive.id)
    assert _search(letta, second["id"], "lighthouse keeper island") == []


def test_agent_tool_searches_attached_archives(letta: Letta, api: TestClient, openai_server: OpenAIServer) -> None:
    archive = letta.archives.create(name="novel")
    letta.archives.passages.create_many(archive.id, passages=[{"text": t} for t in SECTIONS])
    agent = create_agent(api, openai_server)
    letta.agents.archives.attach(archive.id, agent_id=agent["id"])
    openai_server.push(
        call("archival_memory_search", query="who rowed out in the storm", request_heartbeat=True),
        call("send_message", message="Oskar."),
    )
    out = say(api, agent["id"], "Who saved the crew?")
    (returned,) = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert returned["status"] == "success", returned["tool_return"]
    assert json.loads(returned["tool_return"])[0]["content"] == SECTIONS[2]


BAD_INPUT = [
    ("/v1/archives/", {"name": ""}, "name"),
    ("/v1/archives/", {"name": "x", "embedding_config": {"embedding_model": "m"}}, "embedding_endpoint_type"),
    ("/v1/archives/", {"name": "x", "embedding": "nosuchprovider/model"}, "nosuchprovider"),
    ("/v1/archives/", {"name": "x", "surprise": 1}, "surprise"),
    ("{archive}/passages", {"text": ""}, "text"),
    ("{archive}/passages/batch", {"passages": []}, "passages"),
    ("{archive}/passages/batch", {"passages": [{"text": "ok"}, {"text": ""}]}, "text"),
    ("{archive}/passages/batch", {"passages": [{"text": "x"}] * 101}, "passages"),
    ("{archive}/passages/batch", {"passages": [{"text": "x" * 150_000}, {"text": "y" * 60_000}]}, "200000 characters"),
]


def test_bad_input_is_named(letta: Letta, api: TestClient) -> None:
    archive = letta.archives.create(name="target")
    for path, body, named in BAD_INPUT:
        url = path.replace("{archive}", f"/v1/archives/{archive.id}")
        response = api.post(url, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert named in response.text, (path, body, response.text)
    # nothing was written
    assert api.get(f"/v1/archives/{archive.id}/passages").json() == []
    assert [a.name for a in letta.archives.list()] == ["target"]


def test_another_organizations_archive_is_not_found(
    letta: Letta, api: TestClient, base_url: str, db: Database, openai_server: OpenAIServer
) -> None:
    mine = letta.archives.create(name="mine")
    passage = letta.archives.passages.create(mine.id, text="secret plans of the lighthouse")
    stranger = strict_client(base_url, new_org_key(db))
    theirs = stranger.archives.create(name="theirs")
    agent = create_agent(api, openai_server)
    calls = [
        lambda: stranger.archives.retrieve(mine.id),
        lambda: stranger.archives.update(mine.id, name="taken"),
        lambda: stranger.archives.delete(mine.id),
        lambda: stranger.archives.passages.create(mine.id, text="injected"),
        lambda: stranger.archives.passages.create_many(mine.id, passages=[{"text": "injected"}]),
        lambda: stranger.archives.passages.delete(passage.id, archive_id=mine.id),
        lambda: stranger.agents.archives.attach(mine.id, agent_id=agent["id"]),
        # their archive cannot be attached to my agent either
        lambda: letta.agents.archives.attach(theirs.id, agent_id=agent["id"]),
    ]
    for attempt in calls:
        with pytest.raises(letta_client.NotFoundError):
            attempt()
    assert [a.id for a in stranger.archives.list()] == [theirs.id]
    assert list(stranger.archives.list(agent_id=agent["id"])) == []
    assert letta.archives.retrieve(mine.id).name == "mine"
    listed = httpx.get(
        f"{base_url}/v1/archives/{mine.id}/passages", headers={"Authorization": f"Bearer {new_org_key(db)}"}
    )
    assert listed.status_code == 404
