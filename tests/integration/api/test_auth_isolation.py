"""Every route but health needs a key; another organization's ids answer 404, never data."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.store.db import Database
from tests.integration.conftest import new_org_key


def test_missing_and_wrong_keys_are_401(app: FastAPI) -> None:
    with TestClient(app) as anon:
        r = anon.get("/v1/agents/")
        assert r.status_code == 401 and "API key" in r.json()["detail"]
        r = anon.get("/v1/agents/", headers={"Authorization": "Bearer sk-o-nope"})
        assert r.status_code == 401 and "invalid" in r.json()["detail"]
        assert anon.get("/v1/health/").status_code == 200


def test_other_organization_sees_nothing(app: FastAPI, db: Database, client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "secret"}]}).json()
    block = client.post("/v1/blocks/", json={"label": "shared", "value": "secret"}).json()
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        aid, bid = agent["id"], block["id"]
        assert other.get(f"/v1/agents/{aid}").status_code == 404
        assert other.patch(f"/v1/agents/{aid}", json={"name": "x"}).status_code == 404
        assert other.delete(f"/v1/agents/{aid}").status_code == 404
        assert other.get(f"/v1/agents/{aid}/core-memory/blocks").status_code == 404
        assert other.patch(f"/v1/agents/{aid}/core-memory/blocks/human", json={"value": "x"}).status_code == 404
        assert other.get(f"/v1/agents/{aid}/messages").status_code == 404
        assert other.get(f"/v1/blocks/{bid}").status_code == 404
        assert other.patch(f"/v1/blocks/{bid}", json={"value": "x"}).status_code == 404
        assert other.delete(f"/v1/blocks/{bid}").status_code == 404
        # Their own agent cannot borrow our block, nor can they page with our ids as cursors.
        mine = other.post("/v1/agents/", json={}).json()
        assert other.patch(f"/v1/agents/{mine['id']}/core-memory/blocks/attach/{bid}").status_code == 404
        assert other.post("/v1/agents/", json={"block_ids": [bid]}).status_code == 404
        assert aid not in [a["id"] for a in other.get("/v1/agents/").json()]
        assert bid not in [b["id"] for b in other.get("/v1/blocks/").json()]
        assert other.get("/v1/agents/", params={"after": aid}).status_code == 422
    # Nothing of ours changed.
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"] == "secret"
    assert client.get(f"/v1/blocks/{block['id']}").json()["value"] == "secret"


def test_other_organization_sees_no_step_identity_tag_or_search_hit(
    app: FastAPI, db: Database, client: TestClient
) -> None:
    from o.ids import new_id
    from o.store import runs as run_store
    from o.store import steps as step_store

    agent = client.post("/v1/agents/", json={"tags": ["ours-only"]}).json()
    identity = client.post(
        "/v1/identities/", json={"identifier_key": "u1", "name": "U", "identity_type": "user"}
    ).json()
    client.post(f"/v1/agents/{agent['id']}/archival-memory", json={"text": "zebra migration notes"})
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
        org = org["organization_id"]
        run = run_store.insert(conn, {"id": new_id("run"), "organization_id": org, "agent_id": agent["id"]})
        step_id = new_id("step")
        step_store.insert(
            conn,
            {"id": step_id, "organization_id": org, "agent_id": agent["id"], "run_id": run.id, "step_index": 0},
        )
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        iid, aid = identity["id"], agent["id"]
        for path in (f"/v1/steps/{step_id}", f"/v1/steps/{step_id}/messages", f"/v1/steps/{step_id}/metrics"):
            assert other.get(path).status_code == 404, path
        assert other.get(f"/v1/steps/{step_id}/trace").status_code == 404
        assert other.patch(f"/v1/steps/{step_id}/feedback", json={"feedback": "negative"}).status_code == 404
        assert other.get(f"/v1/runs/{run.id}/trace").status_code == 404
        assert other.get("/v1/steps/", params={"agent_id": aid}).json() == []
        assert other.get(f"/v1/identities/{iid}").status_code == 404
        assert other.patch(f"/v1/identities/{iid}", json={"name": "x"}).status_code == 404
        assert other.put(f"/v1/identities/{iid}/properties", json=[]).status_code == 404
        assert other.delete(f"/v1/identities/{iid}").status_code == 404
        mine = other.post("/v1/agents/", json={}).json()["id"]
        assert other.patch(f"/v1/agents/{mine}/identities/attach/{iid}").status_code == 404
        assert other.patch(f"/v1/agents/{aid}/identities/detach/{iid}").status_code == 404
        assert "ours-only" not in other.get("/v1/tags/").json()
        assert other.post("/v1/passages/search", json={"query": "zebra"}).json() == []
        assert other.post("/v1/passages/search", json={"query": "zebra", "agent_id": aid}).status_code == 404
        assert other.post("/v1/messages/search", json={"query": "zebra", "agent_id": aid}).status_code == 404
    assert client.get(f"/v1/identities/{identity['id']}").json()["name"] == "U"
    assert client.get(f"/v1/steps/{step_id}").json()["feedback"] is None


def test_other_organization_cannot_export_our_agent(app: FastAPI, db: Database, client: TestClient) -> None:
    agent = client.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "secret"}]}).json()
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        assert other.get(f"/v1/agents/{agent['id']}/export").status_code == 404
        assert other.get(f"/v1/agents/{agent['id']}/bundle").status_code == 404
        # an import makes new rows in the importer's organization: it never reaches ours
        bundle = client.get(f"/v1/agents/{agent['id']}/bundle").content
        moved = other.post(
            "/v1/agents/import-bundle", content=bundle, headers={"content-type": "application/x-msgpack"}
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["agent_id"] != agent["id"]
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"] == "secret"
    assert [a["id"] for a in client.get("/v1/agents/").json()] == [agent["id"]]


def test_other_organization_cannot_reach_our_tools(app: FastAPI, db: Database, client: TestClient) -> None:
    source = 'def shout(text: str) -> str:\n    """Shout.\n\n    Args:\n        text: what\n    """\n    return text\n'
    tool = client.post("/v1/tools/", json={"source_code": source}).json()
    agent = client.post("/v1/agents/", json={"tool_ids": [tool["id"]]}).json()
    base = {t["name"]: t["id"] for t in client.get("/v1/tools/", params={"limit": 100}).json()}
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        aid, tid = agent["id"], tool["id"]
        mine = other.post("/v1/agents/", json={}).json()["id"]
        assert other.get(f"/v1/tools/{tid}").status_code == 404
        assert other.patch(f"/v1/tools/{tid}", json={"tags": ["x"]}).status_code == 404
        assert other.delete(f"/v1/tools/{tid}").status_code == 404
        assert other.get(f"/v1/tools/{tid}/versions").status_code == 404
        assert other.get(f"/v1/agents/{aid}/tools").status_code == 404
        # neither our custom tool nor our base tool records attach to their agent, nor theirs to ours
        assert other.patch(f"/v1/agents/{mine}/tools/attach/{tid}").status_code == 404
        assert other.patch(f"/v1/agents/{mine}/tools/attach/{base['send_message']}").status_code == 404
        assert other.patch(f"/v1/agents/{aid}/tools/detach/{base['send_message']}").status_code == 404
        assert other.post(f"/v1/agents/{aid}/tools/shout/run", json={"args": {"text": "x"}}).status_code == 404
        assert other.post(f"/v1/agents/{mine}/tools/shout/run", json={"args": {"text": "x"}}).status_code == 404
        r = other.patch(f"/v1/agents/{aid}/tools/approval/shout", json={"requires_approval": True})
        assert r.status_code == 404
        assert other.get(f"/v1/agents/{aid}/tool-environment").status_code == 404
        assert other.put(f"/v1/agents/{aid}/tool-environment", json={"variables": {"K": "v"}}).status_code == 404
        # their lists and searches hold their own base tools only
        theirs = other.get("/v1/tools/", params={"limit": 100}).json()
        assert tid not in {t["id"] for t in theirs} and not set(base.values()) & {t["id"] for t in theirs}
        hits = other.post("/v1/tools/search", json={"query": "shout"}).json()
        assert tid not in {h["tool"]["id"] for h in hits}
        assert other.get("/v1/tools/", params={"tool_ids": tid}).json() == []
    assert client.get(f"/v1/agents/{agent['id']}").json()["tool_rules"] == []
    assert "shout" in {t["name"] for t in client.get(f"/v1/agents/{agent['id']}/tools").json()}


def test_model_listings_need_a_key(app: FastAPI, client: TestClient) -> None:
    # the operator's models are the same for every organization (no ids to leak), but not for anyone
    with TestClient(app) as anon:
        assert anon.get("/v1/models/").status_code == 401
        assert anon.get("/v1/models/embedding").status_code == 401
    assert client.get("/v1/models/").status_code == 200
    assert client.get("/v1/models/embedding").json()[0]["embedding_dim"] == 384
