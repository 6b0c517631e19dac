"""Revisions, evaluation, evolutions and feedback over the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.integration.evolution import task
from tests.integration.evolution.task import World
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


@pytest.fixture
def api(db: Database) -> Iterator[TestClient]:
    app = wiring.app(db, evolution=task.make_deps(db))
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        yield client


def _agent(api: TestClient, server: OpenAIServer, **extra: object) -> dict:
    body = {
        "name": "geo",
        "system": task.BASE_SYSTEM,
        "llm_config": {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": server.base_url,
            "context_window": 128000,
        },
        "memory_blocks": [
            {"label": "persona", "value": "I know capitals.", "limit": 500},
            {"label": "human", "value": "Unknown user.", "limit": 500},
        ],
        **extra,
    }
    response = api.post("/v1/agents/", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_revisions_lazy_first_drift_and_rollback(api: TestClient, server: OpenAIServer) -> None:
    agent = _agent(api, server)
    aid = agent["id"]
    revs = api.get(f"/v1/agents/{aid}/revisions").json()
    assert [(r["number"], r["author"], r["parent"], r["current"]) for r in revs] == [(1, "user", None, True)]
    first = revs[0]
    assert first["config"]["system"] == task.BASE_SYSTEM
    assert [b["label"] for b in first["config"]["blocks"]] == ["human", "persona"]
    assert "value" not in first["config"]["blocks"][0]
    assert api.get(f"/v1/agents/{aid}").json()["metadata"]["revision"] == 1

    # a change through the plain agent API becomes revision 2 the next time anyone asks
    assert api.patch(f"/v1/agents/{aid}", json={"system": "Be terse."}).status_code == 200
    current = api.get(f"/v1/agents/{aid}/revisions/current").json()
    assert current["number"] == 2 and current["parent"] == 1 and current["author"] == "user"
    assert "-" + task.BASE_SYSTEM in current["diff"]["system"] and "+Be terse." in current["diff"]["system"]
    assert api.get(f"/v1/agents/{aid}/revisions/1").json()["current"] is False

    back = api.post(f"/v1/agents/{aid}/revisions/1/rollback", json={"rationale": "terse was worse"})
    assert back.status_code == 200, back.text
    assert back.json()["number"] == 3 and back.json()["rationale"] == "terse was worse" and back.json()["current"]
    state = api.get(f"/v1/agents/{aid}").json()
    assert state["system"] == task.BASE_SYSTEM and state["metadata"]["revision"] == 3
    # a metadata PATCH is not a configuration change, and the running revision stays visible
    assert api.patch(f"/v1/agents/{aid}", json={"metadata": {"team": "geo"}}).status_code == 200
    assert api.get(f"/v1/agents/{aid}/revisions/current").json()["number"] == 3
    assert api.get(f"/v1/agents/{aid}").json()["metadata"] == {"team": "geo", "revision": 3}
    listed = api.get(f"/v1/agents/{aid}/revisions", params={"order": "asc", "after": 1, "limit": 1}).json()
    assert [r["number"] for r in listed] == [2]


def test_rollback_restores_block_layout_and_values(api: TestClient, server: OpenAIServer) -> None:
    aid = _agent(api, server)["id"]
    api.get(f"/v1/agents/{aid}/revisions")
    human = next(b for b in api.get(f"/v1/agents/{aid}").json()["blocks"] if b["label"] == "human")
    # detach 'human', add 'notes', and raise persona's limit: revision 2
    assert api.patch(f"/v1/agents/{aid}/core-memory/blocks/human", json={"value": "Ada"}).status_code == 200
    block = api.post("/v1/blocks/", json={"label": "notes", "value": "n", "limit": 100}).json()
    assert api.patch(f"/v1/agents/{aid}/core-memory/blocks/detach/{human['id']}").status_code == 200
    assert api.patch(f"/v1/agents/{aid}/core-memory/blocks/attach/{block['id']}").status_code == 200
    assert api.get(f"/v1/agents/{aid}/revisions/current").json()["number"] == 2
    assert api.post(f"/v1/agents/{aid}/revisions/1/rollback").status_code == 200
    blocks = {b["label"]: b for b in api.get(f"/v1/agents/{aid}").json()["blocks"]}
    assert set(blocks) == {"human", "persona"}
    assert blocks["human"]["value"] == "Ada"  # the detached block came back with its value


def test_revision_errors(api: TestClient, server: OpenAIServer) -> None:
    aid = _agent(api, server)["id"]
    missing = api.get(f"/v1/agents/{aid}/revisions/9")
    assert missing.status_code == 404 and "no revision 9" in missing.json()["detail"]
    assert api.post(f"/v1/agents/{aid}/revisions/9/rollback").status_code == 404
    assert api.get("/v1/agents/agent-00000000-0000-0000-0000-000000000000/revisions").status_code == 404
    assert api.get(f"/v1/agents/{aid}/revisions/abc").status_code == 422


def test_revisions_are_immutable(db: Database, api: TestClient, server: OpenAIServer) -> None:
    import psycopg

    aid = _agent(api, server)["id"]
    api.get(f"/v1/agents/{aid}/revisions")
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction() as conn:
        conn.execute("UPDATE agent_revisions SET rationale = 'rewritten' WHERE agent_id = %s", (aid,))


def test_evaluation_suite_roundtrip_and_validation(api: TestClient, server: OpenAIServer) -> None:
    aid = _agent(api, server)["id"]
    assert api.get(f"/v1/agents/{aid}/evaluation").json()["cases"] == []
    suite = task.suite().model_dump(mode="json")
    assert api.put(f"/v1/agents/{aid}/evaluation", json=suite).status_code == 200
    cases = api.get(f"/v1/agents/{aid}/evaluation").json()["cases"]
    assert len(cases) == len(task.GATE_COUNTRIES + task.HELD_OUT_COUNTRIES)
    broken = {"cases": [{"name": "x", "input": "y", "checks": {"regex": "("}}]}
    bad = api.put(f"/v1/agents/{aid}/evaluation", json=broken)
    assert bad.status_code == 422
    bad = api.put(f"/v1/agents/{aid}/evaluation", json={"gate": {"judge_weight": 3}})
    assert bad.status_code == 422 and "judge_weight" in bad.text


def test_start_list_get_and_feedback(api: TestClient, server: OpenAIServer, world: World) -> None:
    aid = _agent(api, server)["id"]
    assert api.put(f"/v1/agents/{aid}/evaluation", json=task.suite().model_dump(mode="json")).status_code == 200
    world.propose(task.WORSE)
    started = api.post(f"/v1/agents/{aid}/evolutions", json={"wait": True, "bake_seconds": 0})
    assert started.status_code == 202, started.text
    evo = started.json()
    assert evo["status"] == "rolled_back" and "gate refused" in evo["reason"]
    assert evo["events"][0]["phase"] == "started" and evo["events"][-1]["phase"] == "rolled_back"
    listed = api.get(f"/v1/agents/{aid}/evolutions").json()
    assert [e["id"] for e in listed] == [evo["id"]]
    assert listed[0]["figures"]["shadow"]["candidate"]["score"] < listed[0]["figures"]["shadow"]["current"]["score"]
    assert api.get(f"/v1/agents/{aid}/evolutions", params={"status": "promoted"}).json() == []
    got = api.get(f"/v1/agents/{aid}/evolutions/{evo['id']}").json()
    assert got["diff"]["system"] and got["decision"] == "rolled_back"
    bad = api.post(f"/v1/agents/{aid}/evolutions", json={"canary_weight": 1.5})
    assert bad.status_code == 422
    bad = api.post(f"/v1/agents/{aid}/evolutions", json={"bake_seconds": 100, "max_seconds": 50})
    assert bad.status_code == 422 and "time budget" in bad.json()["detail"]
    assert api.get(f"/v1/agents/{aid}/evolutions").json()[0]["id"] == evo["id"]  # nothing was started

    # feedback on a real response, attributed to the revision that produced it
    server.push(call("send_message", message="Paris"))
    sent = api.post(f"/v1/agents/{aid}/messages", json={"messages": [{"role": "user", "content": "France?"}]})
    assert sent.status_code == 200, sent.text
    reply = next(m for m in sent.json()["messages"] if m["message_type"] == "assistant_message")
    fb = api.post(f"/v1/agents/{aid}/feedback", json={"message_id": reply["id"], "score": 0.9, "comment": "good"})
    assert fb.status_code == 201, fb.text
    assert fb.json()["revision"] == 1 and fb.json()["run_id"]
    assert api.post(f"/v1/agents/{aid}/feedback", json={"score": 0.5}).status_code == 422
    assert api.post(f"/v1/agents/{aid}/feedback", json={"run_id": "run-x", "score": 2}).status_code == 422
    assert api.post(f"/v1/agents/{aid}/feedback", json={"run_id": "run-nope", "score": 0.5}).status_code == 404


def test_stop_endpoint_rolls_back(api: TestClient, server: OpenAIServer, world: World, db: Database) -> None:
    from o.evolution import loop

    aid = _agent(api, server)["id"]
    assert api.put(f"/v1/agents/{aid}/evaluation", json=task.suite().model_dump(mode="json")).status_code == 200
    world.propose(task.BETTER)
    deps = api.app.state.services.evolution  # type: ignore[attr-defined]
    with db.transaction() as conn:
        org_id = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (aid,)).fetchone()["organization_id"]
    evo = loop.start(deps, org_id, aid)
    for action in ("reflect", "propose", "shadow", "gate", "canary"):
        loop.step(deps, evo.id, action)
    with db.transaction() as conn:
        running = conn.execute("SELECT status, reason FROM evolutions WHERE id = %s", (evo.id,)).fetchone()
    assert running["status"] == "canary", running["reason"]
    # the evaluator cannot change under a running evolution
    assert api.put(f"/v1/agents/{aid}/evaluation", json={"cases": []}).status_code == 409
    stopped = api.post(f"/v1/agents/{aid}/evolutions/{evo.id}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["decision"] == "rolled_back" and stopped.json()["reason"] == "stopped on request"
    assert api.get(f"/v1/agents/{aid}").json()["metadata"]["revision"] == 1
    assert api.post(f"/v1/agents/{aid}/evolutions/evolution-nope/stop").status_code == 404
