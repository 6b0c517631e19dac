"""The app as a Lambda makes it (routers included when a request first needs them) answers as the app
`o serve` makes, includes only what its requests needed, and documents every route."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.api.app import create_app
from o.api.routers import MODULES, Routes
from o.store.db import Database
from tests import wiring


def included(app: FastAPI) -> list[str]:
    routes: Routes = app.state.routes
    return list(routes.included)


def test_a_lambda_app_includes_the_routers_its_requests_need(db: Database, api_key: str) -> None:
    lazy = create_app(wiring.services(db, settings=wiring.KEYED), max_body_bytes=256 * 1024, routes_on_demand=True)
    assert included(lazy) == []
    with TestClient(lazy, headers={"Authorization": f"Bearer {api_key}"}) as client:
        agent = client.post("/v1/agents", json={"name": "lazy", "memory_blocks": [{"label": "human", "value": "Ada"}]})
        assert agent.status_code == 200, agent.text
        assert included(lazy) == ["agents", "agent_changes"]
        blocks = client.get(f"/v1/agents/{agent.json()['id']}/core-memory/blocks/")
        assert blocks.status_code == 200 and [b["label"] for b in blocks.json()] == ["human"]
        assert included(lazy) == ["agents", "agent_changes", "core_memory"]
        # /v1/agents/import is the agent files' (and could read as an agent's id): both, in the app's order
        assert client.post("/v1/agents/import").status_code == 422
        assert set(included(lazy)) == {"agent_files", "agents", "agent_changes", "core_memory"}
        # a path no table names gets every router first, so it is answered as by the whole app
        assert client.get("/v1/nowhere").status_code == 404
        assert set(included(lazy)) == set(MODULES)


def test_a_read_of_an_agent_includes_the_agents_reads_only(db: Database, api_key: str, client: TestClient) -> None:
    agent = client.post("/v1/agents", json={"name": "read", "memory_blocks": [{"label": "human", "value": "Ada"}]})
    assert agent.status_code == 200, agent.text
    lazy = create_app(wiring.services(db, settings=wiring.KEYED), max_body_bytes=256 * 1024, routes_on_demand=True)
    with TestClient(lazy, headers={"Authorization": f"Bearer {api_key}"}) as reader:
        got = reader.get(f"/v1/agents/{agent.json()['id']}")
        assert got.status_code == 200 and got.json()["name"] == "read", got.text
        assert reader.get("/v1/agents/").status_code == 200
        assert included(lazy) == ["agents"]
        # another method of the same path gets the routes that change agents, and is answered by them
        assert reader.delete(f"/v1/agents/{agent.json()['id']}").status_code == 200
        assert included(lazy) == ["agents", "agent_changes"]
        assert reader.get(f"/v1/agents/{agent.json()['id']}").status_code == 404


def test_openapi_gets_every_route_first(db: Database, app: FastAPI) -> None:
    lazy = create_app(wiring.services(db, settings=wiring.KEYED), max_body_bytes=256 * 1024, routes_on_demand=True)
    with TestClient(lazy) as client, TestClient(app) as whole:
        assert client.get("/openapi.json").json() == whole.get("/openapi.json").json()
    assert set(included(lazy)) == set(MODULES)
    assert lazy.openapi() == app.openapi()
