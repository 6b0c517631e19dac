"""The agents, blocks and messages API against the real Postgres, in Letta's shapes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from o.ids import is_id, new_id
from o.store import messages as message_store
from o.store.db import Database

TWO_BLOCKS = [
    {"label": "human", "value": "Name: Ada", "limit": 200},
    {"label": "persona", "value": "I am a careful assistant.", "description": "who I am"},
]


def make_agent(client: TestClient, **extra: object) -> dict:
    r = client.post("/v1/agents/", json={"name": "demo", "memory_blocks": TWO_BLOCKS, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_create_agent_with_blocks_returns_letta_agent_state(client: TestClient) -> None:
    agent = make_agent(client, model="anthropic/claude-sonnet-4", tags=["a", "b"])
    assert is_id(agent["id"], "agent")
    assert agent["llm_config"]["model_endpoint_type"] == "anthropic"
    assert agent["llm_config"]["model"] == "claude-sonnet-4"
    assert agent["model"] == "anthropic/claude-sonnet-4"
    assert [b["label"] for b in agent["memory"]["blocks"]] == ["human", "persona"]
    human = agent["blocks"][0]
    assert is_id(human["id"], "block") and human["value"] == "Name: Ada" and human["limit"] == 200
    assert agent["blocks"][1]["description"] == "who I am"
    assert agent["tags"] == ["a", "b"]
    assert agent["embedding_config"]["embedding_dim"] == 384

    fetched = client.get(f"/v1/agents/{agent['id']}").json()
    assert fetched["blocks"] == agent["blocks"]


def test_edit_block_by_label_and_read_it_back(client: TestClient) -> None:
    agent = make_agent(client)
    r = client.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "Name: Ada Lovelace"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "Name: Ada Lovelace"
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"] == "Name: Ada Lovelace"
    listed = client.get(f"/v1/agents/{agent['id']}/core-memory/blocks").json()
    assert [b["label"] for b in listed] == ["human", "persona"]
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/nope").status_code == 404


def test_update_and_delete_agent(client: TestClient) -> None:
    agent = make_agent(client)
    r = client.patch(f"/v1/agents/{agent['id']}", json={"name": "renamed", "system": "Be brief.", "tags": ["x"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["system"], body["tags"]) == ("renamed", "Be brief.", ["x"])
    assert client.delete(f"/v1/agents/{agent['id']}").status_code == 200
    assert client.get(f"/v1/agents/{agent['id']}").status_code == 404
    assert client.delete(f"/v1/agents/{agent['id']}").status_code == 404


def test_list_agents_paginates_with_cursors(client: TestClient) -> None:
    ids = [client.post("/v1/agents/", json={"name": f"n{i}"}).json()["id"] for i in range(5)]
    asc = [a["id"] for a in client.get("/v1/agents/", params={"order": "asc", "limit": 100}).json()]
    assert asc == ids
    first = client.get("/v1/agents/", params={"order": "asc", "limit": 2}).json()
    assert [a["id"] for a in first] == ids[:2]
    nxt = client.get("/v1/agents/", params={"order": "asc", "limit": 2, "after": ids[1]}).json()
    assert [a["id"] for a in nxt] == ids[2:4]
    before = client.get("/v1/agents/", params={"order": "asc", "limit": 2, "before": ids[4]}).json()
    assert [a["id"] for a in before] == ids[2:4]
    desc = client.get("/v1/agents/", params={"limit": 100}).json()
    assert [a["id"] for a in desc] == list(reversed(ids))
    assert client.get("/v1/agents/", params={"name": "n3"}).json()[0]["id"] == ids[3]
    bad = client.get("/v1/agents/", params={"after": new_id("agent")})
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]


def test_blocks_crud_and_sharing_between_agents(client: TestClient) -> None:
    shared = client.post("/v1/blocks/", json={"label": "team", "value": "We ship on Fridays.", "limit": 100}).json()
    assert is_id(shared["id"], "block")
    a1, a2 = make_agent(client), make_agent(client)
    for agent in (a1, a2):
        r = client.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/attach/{shared['id']}")
        assert r.status_code == 200, r.text
        assert "team" in [b["label"] for b in r.json()["blocks"]]
    # An edit through one agent is seen by the other: it is one block.
    client.patch(f"/v1/agents/{a1['id']}/core-memory/blocks/team", json={"value": "We ship on Mondays."})
    assert client.get(f"/v1/agents/{a2['id']}/core-memory/blocks/team").json()["value"] == "We ship on Mondays."
    assert sorted(a["id"] for a in client.get(f"/v1/blocks/{shared['id']}/agents").json()) == sorted(
        [a1["id"], a2["id"]]
    )
    # A second block with an attached label is refused rather than shadowing the first.
    other = client.post("/v1/blocks/", json={"label": "team", "value": "other"}).json()
    clash = client.patch(f"/v1/agents/{a1['id']}/core-memory/blocks/attach/{other['id']}")
    assert clash.status_code == 409 and "team" in clash.json()["detail"]

    r = client.patch(f"/v1/agents/{a1['id']}/core-memory/blocks/detach/{shared['id']}")
    assert r.status_code == 200 and "team" not in [b["label"] for b in r.json()["blocks"]]
    assert client.patch(f"/v1/agents/{a1['id']}/core-memory/blocks/detach/{shared['id']}").status_code == 404

    assert client.patch(f"/v1/blocks/{shared['id']}", json={"limit": 5}).status_code == 422
    assert client.patch(f"/v1/blocks/{shared['id']}", json={"description": "d"}).json()["description"] == "d"
    labels = [b["label"] for b in client.get("/v1/blocks/", params={"label": "team"}).json()]
    assert labels == ["team", "team"]
    assert client.delete(f"/v1/blocks/{shared['id']}").status_code == 200
    assert client.get(f"/v1/blocks/{shared['id']}").status_code == 404
    assert "team" not in [b["label"] for b in client.get(f"/v1/agents/{a2['id']}").json()["blocks"]]


def test_messages_are_listed_in_letta_shapes_with_cursor_pages(client: TestClient, db: Database) -> None:
    agent = make_agent(client)
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
        rows = message_store.insert_many(
            conn,
            [
                {
                    "id": new_id("message"),
                    "organization_id": org["organization_id"],
                    "agent_id": agent["id"],
                    "role": "user",
                    "content": [{"type": "text", "text": f"hello {i}"}],
                    "text": f"hello {i}",
                }
                for i in range(5)
            ]
            + [
                {
                    "id": new_id("message"),
                    "organization_id": org["organization_id"],
                    "agent_id": agent["id"],
                    "role": "assistant",
                    "content": [{"type": "text", "text": "thinking"}],
                    "text": "thinking",
                    "tool_calls": [
                        {
                            "id": "call-1",
                            "type": "function",
                            "function": {"name": "send_message", "arguments": '{"message": "hi Ada"}'},
                        }
                    ],
                }
            ],
        )
    ids = [r["id"] for r in rows]
    newest_first = client.get(f"/v1/agents/{agent['id']}/messages").json()
    assert newest_first[0]["message_type"] == "reasoning_message"
    assert newest_first[1] == {**newest_first[1], "message_type": "assistant_message", "content": "hi Ada"}
    assert newest_first[-1]["content"] == "hello 0"
    page = client.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc", "limit": 2, "after": ids[1]})
    assert [m["content"] for m in page.json()] == ["hello 2", "hello 3"]
    # cursors follow the requested order (newest first by default): "after" is older, "before" newer
    page = client.get(f"/v1/agents/{agent['id']}/messages", params={"limit": 2, "after": ids[3]})
    assert [m["content"] for m in page.json()] == ["hello 2", "hello 1"]
    page = client.get(f"/v1/agents/{agent['id']}/messages", params={"limit": 1, "before": ids[3]})
    assert [m["content"] for m in page.json()] == ["hello 4"]


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/v1/health/", headers={"Authorization": ""}).json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path in (
        "/v1/agents/",
        "/v1/agents/{agent_id}",
        "/v1/agents/{agent_id}/core-memory/blocks/{block_label}",
        "/v1/blocks/",
        "/v1/agents/{agent_id}/messages",
    ):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200
