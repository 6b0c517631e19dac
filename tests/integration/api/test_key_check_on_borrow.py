"""The hot routes know a key's organization from the process's memory, and still check the key in the
database on every request, as the first statement on the request's own connection: a revoked key is
refused by the very next request, and that request reads and writes nothing."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.store import orgs
from o.store.db import Database


def _org_key(db: Database) -> tuple[str, str, str]:
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")
        key_id, secret = orgs.create_api_key(conn, org["id"])
    return org["id"], key_id, secret


def _agent(client: TestClient) -> str:
    blocks = [{"label": "human", "value": "Name: Ada"}]
    created = client.post("/v1/agents/", json={"name": "cached", "memory_blocks": blocks})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_a_revoked_key_is_refused_by_the_next_request_on_every_hot_route(app: FastAPI, db: Database) -> None:
    org_id, key_id, secret = _org_key(db)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        agent_id = _agent(client)
        block = f"/v1/agents/{agent_id}/core-memory/blocks/human"
        reads = [f"/v1/agents/{agent_id}", "/v1/agents/?limit=50", block, f"/v1/agents/{agent_id}/messages?limit=5"]
        for path in reads:  # the key's organization is now known to this process
            assert client.get(path).status_code == 200, path
        assert client.patch(block, json={"value": "Name: Ada L."}).json()["value"] == "Name: Ada L."
        assert app.state.known_keys[orgs.hash_key(secret)] == org_id

        with db.transaction() as conn:
            assert orgs.revoke_api_key(conn, key_id) is not None
        for path in reads:
            refused = client.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["detail"] == "invalid or revoked API key"
        refused = client.patch(block, json={"value": "written by a revoked key"})
        assert refused.status_code == 401
    with db.read() as conn:
        row = conn.execute(
            "SELECT b.value FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id WHERE ab.agent_id = %s",
            (agent_id,),
        ).fetchone()
    assert row is not None and row["value"] == "Name: Ada L."  # the refused edit wrote nothing


def test_what_the_process_remembers_is_only_a_hint_the_database_confirms(app: FastAPI, db: Database) -> None:
    org_id, _, secret = _org_key(db)
    other_org, _, other_secret = _org_key(db)
    with TestClient(app, headers={"Authorization": f"Bearer {other_secret}"}) as other:
        other_agent = _agent(other)
    # a wrong organization remembered for a valid key (as if the memory were corrupted) is not trusted,
    # whether the key is checked by itself or in the route's statement (its use noted lately)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        for _ in range(2):
            app.state.known_keys[orgs.hash_key(secret)] = other_org
            refused = client.get(f"/v1/agents/{other_agent}")
            assert refused.status_code == 401
            app.state.known_keys[orgs.hash_key(secret)] = org_id
            assert client.get("/v1/agents/").status_code == 200  # and the key's use noted
        # an unknown key is looked up, refused and never remembered
        unknown = "sk-o-" + uuid.uuid4().hex
        assert client.get("/v1/agents/", headers={"Authorization": f"Bearer {unknown}"}).status_code == 401
        assert orgs.hash_key(unknown) not in app.state.known_keys
        assert client.get("/v1/agents/", headers={"Authorization": ""}).status_code == 401


def test_a_revoked_key_is_refused_whatever_the_hot_statement_finds(app: FastAPI, db: Database) -> None:
    """On the hot path the key's check rides on the route's statement (o.store.keyed): a statement that finds
    nothing (a missing agent, an empty history, a cursor naming nothing, a value over the limit) must not be
    taken for the answer, nor let the route read on for a revoked key; and a malformed request with a revoked
    key is told 401, not what is malformed."""
    _, key_id, secret = _org_key(db)
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as client:
        agent_id = _agent(client)
        block = f"/v1/agents/{agent_id}/core-memory/blocks/human"
        missing = "agent-00000000-0000-0000-0000-000000000000"
        assert client.get(f"/v1/agents/{agent_id}").status_code == 200  # checked by itself (and noted)
        assert client.get(f"/v1/agents/{agent_id}").status_code == 200  # checked in the statement
        assert client.get(f"/v1/agents/{agent_id}/messages?limit=5").json() == []
        assert client.get(f"/v1/agents/{missing}").status_code == 404

        with db.transaction() as conn:
            assert orgs.revoke_api_key(conn, key_id) is not None
        refused = [
            client.get(f"/v1/agents/{missing}"),
            client.get(f"/v1/agents/{agent_id}/messages?limit=5"),  # no message: the page finds nothing
            client.get(f"/v1/agents/{agent_id}/messages?after=message-nope"),
            client.get(f"/v1/agents/{agent_id}/messages?limit=abc"),
            client.get("/v1/agents/?limit=0"),
            client.get(f"/v1/agents/{agent_id}/messages?use_assistant_message=maybe"),
            client.patch(block, json={"value": "x" * 10_000}),
            client.patch(f"/v1/agents/{agent_id}/core-memory/blocks/nope", json={"value": "v"}),
        ]
        for answer in refused:
            assert answer.status_code == 401, (answer.request.url, answer.text)
            assert answer.json()["detail"] == "invalid or revoked API key"
