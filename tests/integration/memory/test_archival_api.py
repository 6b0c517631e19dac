"""The archival-memory routes of Letta's V1 API, through the real app and Postgres."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.store.db import Database
from tests.integration.conftest import new_org_key


def test_insert_list_search_delete(client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"name": "archivist"}).json()["id"]
    base = f"/v1/agents/{agent}/archival-memory"
    created = client.post(base, json={"text": "Sam's birthday is on 14 June.", "tags": ["family"]})
    assert created.status_code == 200, created.text
    [passage] = created.json()
    assert passage["text"] == "Sam's birthday is on 14 June." and passage["tags"] == ["family"]
    assert passage["id"].startswith("passage-") and passage["embedding_config"]["embedding_dim"] == 384
    client.post(
        base,
        json={
            "text": "The car needs new winter tyres before November.",
            "tags": ["car"],
            "created_at": "2023-10-01T12:00:00Z",
        },
    )
    listed = client.get(base).json()
    # ordered by when each memory was formed: the tyre note is dated a year earlier
    assert [p["text"][:3] for p in listed] == ["The", "Sam"]
    assert client.get(base, params={"search": "tyres"}).json()[0]["tags"] == ["car"]

    found = client.get(f"{base}/search", params={"query": "when is Sam's birthday?", "top_k": 1}).json()
    assert found["count"] == 1 and found["results"][0]["content"] == "Sam's birthday is on 14 June."
    assert set(found["results"][0]) >= {"id", "timestamp", "content", "tags"}
    tagged = client.get(f"{base}/search", params={"query": "birthday tyres", "tags": ["car"]}).json()
    assert [r["tags"] for r in tagged["results"]] == [["car"]]
    dated = client.get(f"{base}/search", params={"query": "tyres birthday", "end_datetime": "2023-12-31T00:00:00Z"})
    assert [r["content"][:3] for r in dated.json()["results"]] == ["The"]

    gone = client.delete(f"{base}/{passage['id']}")
    assert gone.status_code == 200 and passage["id"] in gone.json()["message"]
    assert client.delete(f"{base}/{passage['id']}").status_code == 404
    assert [p["text"][:3] for p in client.get(base).json()] == ["The"]


def test_errors_are_json_and_name_the_problem(client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={}).json()["id"]
    base = f"/v1/agents/{agent}/archival-memory"
    r = client.post(base, json={"text": ""})
    assert r.status_code == 422
    r = client.post(base, json={"text": "x", "colour": "blue"})
    assert r.status_code == 422 and "colour" in r.text
    r = client.get(f"{base}/search", params={"query": "x", "tag_match_mode": "most"})
    assert r.status_code == 422 and "tag_match_mode" in r.text
    r = client.get(f"{base}/search", params={"query": "x", "top_k": 0})
    assert r.status_code == 422
    r = client.get(
        f"{base}/search",
        params={"query": "x", "start_datetime": "2024-02-01T00:00:00Z", "end_datetime": "2024-01-01T00:00:00Z"},
    )
    assert r.status_code == 422 and "after its end" in r.json()["detail"]
    r = client.get("/v1/agents/agent-00000000-0000-0000-0000-000000000000/archival-memory")
    assert r.status_code == 404 and "not found" in r.json()["detail"]


def test_another_organization_cannot_reach_the_memory(app: FastAPI, db: Database, client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={}).json()["id"]
    base = f"/v1/agents/{agent}/archival-memory"
    [passage] = client.post(base, json={"text": "the vault combination is 31-7-44"}).json()
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        assert other.get(base).status_code == 404
        assert other.get(f"{base}/search", params={"query": "vault"}).status_code == 404
        assert other.post(base, json={"text": "planted"}).status_code == 404
        assert other.delete(f"{base}/{passage['id']}").status_code == 404
    assert [p["text"] for p in client.get(base).json()] == ["the vault combination is 31-7-44"]
