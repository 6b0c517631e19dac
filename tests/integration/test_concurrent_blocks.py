"""Concurrent edits of one block never lose an update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from o.memory import blocks as memory_blocks
from o.store.db import Database


def test_concurrent_appends_all_survive(client: TestClient, db: Database) -> None:
    agent = client.post("/v1/agents/", json={"memory_blocks": [{"label": "log", "value": "", "limit": 10_000}]}).json()
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
    org_id = org["organization_id"]

    def append(i: int) -> None:
        with db.transaction() as conn:
            memory_blocks.edit_value(conn, org_id, agent["id"], "log", lambda v: v + f"line {i}\n")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, range(60)))
    value = client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/log").json()["value"]
    assert sorted(value.splitlines()) == sorted(f"line {i}" for i in range(60))


def test_concurrent_api_edits_of_different_fields_keep_both(client: TestClient) -> None:
    block = client.post("/v1/blocks/", json={"label": "b", "value": "v0"}).json()

    def edit(i: int) -> int:
        body = {"value": f"v{i}"} if i % 2 else {"description": f"d{i}"}
        return client.patch(f"/v1/blocks/{block['id']}", json=body).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(edit, range(1, 31))) == {200}
    final = client.get(f"/v1/blocks/{block['id']}").json()
    # Each PATCH changed only its own field: the value is some v<odd>, the description some d<even>.
    assert final["value"].startswith("v") and int(final["value"][1:]) % 2 == 1
    assert final["description"].startswith("d") and int(final["description"][1:]) % 2 == 0
