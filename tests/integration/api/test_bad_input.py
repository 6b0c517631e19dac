"""Bad input gets a 4xx JSON body that names the problem, and nothing is half-written."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from o.ids import new_id
from o.store.db import Database


def agent_count(db: Database) -> int:
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM agents").fetchone()["n"]


def block_count(db: Database) -> int:
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM blocks").fetchone()["n"]


def test_malformed_json(client: TestClient) -> None:
    r = client.post("/v1/agents/", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["detail"]


def test_unknown_field_is_named(client: TestClient) -> None:
    r = client.post("/v1/agents/", json={"name": "a", "memory_blokcs": []})
    assert r.status_code == 422
    assert "memory_blokcs" in r.json()["detail"]


def test_missing_field_is_named(client: TestClient) -> None:
    r = client.post("/v1/blocks/", json={"label": "human"})
    assert r.status_code == 422
    assert "value" in r.json()["detail"] and "Field required" in r.json()["detail"]


def test_block_over_limit_on_create_writes_nothing(client: TestClient, db: Database) -> None:
    agents_before, blocks_before = agent_count(db), block_count(db)
    r = client.post(
        "/v1/agents/",
        json={
            "name": "a",
            "memory_blocks": [
                {"label": "human", "value": "ok"},
                {"label": "persona", "value": "x" * 51, "limit": 50},
            ],
        },
    )
    assert r.status_code == 422
    assert r.json()["code"] == "limit_exceeded" and "persona" in r.json()["detail"]
    assert (agent_count(db), block_count(db)) == (agents_before, blocks_before)


def test_block_edit_over_limit_keeps_old_value(client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "Ada", "limit": 10}]}).json()
    r = client.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "x" * 11})
    assert r.status_code == 422 and "limit of 10" in r.json()["detail"]
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"] == "Ada"


def test_duplicate_labels_rejected(client: TestClient, db: Database) -> None:
    before = agent_count(db)
    r = client.post("/v1/agents/", json={"memory_blocks": [{"label": "h", "value": ""}, {"label": "h", "value": ""}]})
    assert r.status_code == 422 and "unique" in r.json()["detail"]
    assert agent_count(db) == before


def test_unknown_ids_are_404_with_json(client: TestClient) -> None:
    for method, path in [
        ("get", f"/v1/agents/{new_id('agent')}"),
        ("patch", f"/v1/agents/{new_id('agent')}"),
        ("get", f"/v1/blocks/{new_id('block')}"),
        ("get", f"/v1/agents/{new_id('agent')}/messages"),
        ("get", "/v1/agents/not-even-an-id"),
    ]:
        r = client.request(method, path, json={} if method == "patch" else None)
        assert r.status_code == 404, (path, r.text)
        assert "not found" in r.json()["detail"]


def test_unknown_block_on_attach_and_create(client: TestClient, db: Database) -> None:
    before = agent_count(db)
    r = client.post("/v1/agents/", json={"block_ids": [new_id("block")]})
    assert r.status_code == 404 and agent_count(db) == before


def test_oversize_body(client: TestClient) -> None:
    r = client.post("/v1/blocks/", json={"label": "big", "value": "x" * (300 * 1024)})
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["detail"]


def test_oversize_chunked_body(client: TestClient) -> None:
    def chunks():
        for _ in range(300):
            yield b"x" * 1024

    r = client.post("/v1/blocks/", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_chunked_body_under_the_limit_reaches_the_route_whole(client: TestClient) -> None:
    body = json.dumps({"label": "chunked", "value": "y" * 5000}).encode()

    def chunks():
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    r = client.post("/v1/blocks/", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "chunked" and r.json()["value"] == "y" * 5000


def test_invalid_query_parameter(client: TestClient) -> None:
    r = client.get("/v1/agents/", params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
