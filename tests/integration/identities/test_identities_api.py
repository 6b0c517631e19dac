"""Identities and tags: CRUD, upsert, properties, attaching to agents (with the identity's shared blocks),
tags.list with its query parameters; bad input named; another organization's ids are not found."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from letta_client import Letta

from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.conftest import new_org_key
from tests.integration.steps.conftest import strict_client
from tests.servers.openai_server import OpenAIServer


def _identity(api: TestClient, key: str = "user-1", **extra: object) -> dict:
    body = {"identifier_key": key, "name": "Ada", "identity_type": "user", **extra}
    created = api.post("/v1/identities/", json=body)
    assert created.status_code == 200, created.text
    return created.json()


def test_identity_crud_upsert_and_properties(api: TestClient) -> None:
    ada = _identity(api, properties=[{"key": "email", "type": "string", "value": "ada@example.com"}])
    assert ada["id"].startswith("identity-") and ada["agent_ids"] == [] and ada["block_ids"] == []
    assert api.get(f"/v1/identities/{ada['id']}").json() == ada

    dup = api.post("/v1/identities/", json={"identifier_key": "user-1", "name": "B", "identity_type": "user"})
    assert dup.status_code == 409 and "user-1" in dup.text

    # upsert by identifier_key replaces the one that has it
    upserted = api.put("/v1/identities/", json={"identifier_key": "user-1", "name": "Ada L.", "identity_type": "org"})
    assert upserted.status_code == 200 and upserted.json()["id"] == ada["id"]
    assert upserted.json()["name"] == "Ada L." and upserted.json()["properties"] == []
    fresh = api.put("/v1/identities/", json={"identifier_key": "user-2", "name": "Bo", "identity_type": "user"})
    assert fresh.json()["id"] != ada["id"]

    props = [{"key": "age", "type": "number", "value": 36}, {"key": "vip", "type": "boolean", "value": True}]
    assert api.put(f"/v1/identities/{ada['id']}/properties", json=props).status_code == 200
    more = [{"key": "age", "type": "number", "value": 37}, {"key": "prefs", "type": "json", "value": {"tea": True}}]
    api.put(f"/v1/identities/{ada['id']}/properties", json=more)
    got = {p["key"]: p["value"] for p in api.get(f"/v1/identities/{ada['id']}").json()["properties"]}
    assert got == {"age": 37, "vip": True, "prefs": {"tea": True}}

    patched = api.patch(f"/v1/identities/{ada['id']}", json={"name": "Ada Lovelace"})
    assert patched.json()["name"] == "Ada Lovelace" and patched.json()["identity_type"] == "org"
    taken = api.patch(f"/v1/identities/{ada['id']}", json={"identifier_key": "user-2"})
    assert taken.status_code == 409

    listed = api.get("/v1/identities/", params={"identity_type": "user"}).json()
    assert [i["identifier_key"] for i in listed] == ["user-2"]
    assert [i["id"] for i in api.get("/v1/identities/", params={"name": "lovel"}).json()] == [ada["id"]]
    assert api.delete(f"/v1/identities/{ada['id']}").status_code == 200
    assert api.get(f"/v1/identities/{ada['id']}").status_code == 404


@pytest.mark.parametrize(
    "body, named",
    [
        ({"identifier_key": "k", "name": "n", "identity_type": "robot"}, "identity_type"),
        ({"identifier_key": "", "name": "n", "identity_type": "user"}, "identifier_key"),
        ({"identifier_key": "k", "name": "n", "identity_type": "user", "colour": 1}, "colour"),
        (
            {
                "identifier_key": "k",
                "name": "n",
                "identity_type": "user",
                "properties": [{"key": "a", "type": "number", "value": "x"}],
            },
            "property 'a' is declared number",
        ),
        ({"identifier_key": "k", "name": "n", "identity_type": "user", "agent_ids": ["agent-nope"]}, "agent-nope"),
    ],
)
def test_bad_identities_are_refused_naming_the_problem(api: TestClient, body: dict, named: str) -> None:
    response = api.post("/v1/identities/", json=body)
    assert 400 <= response.status_code < 500 and named in response.text, response.text
    assert api.get("/v1/identities/").json() == []  # nothing partially written


def test_attach_shares_the_identity_blocks_and_detach_takes_them_off(
    api: TestClient, letta: Letta, openai_server: OpenAIServer
) -> None:
    first = create_agent(api, openai_server)["id"]
    second = create_agent(api, openai_server)["id"]
    block = api.post("/v1/blocks/", json={"label": "customer", "value": "Ada likes tea."}).json()
    ada = _identity(api, block_ids=[block["id"]])

    letta.agents.identities.attach(ada["id"], agent_id=first)
    letta.agents.identities.attach(ada["id"], agent_id=second)
    assert sorted(api.get(f"/v1/identities/{ada['id']}").json()["agent_ids"]) == sorted([first, second])
    # both agents read the one shared block: an edit through one is what the other sees
    api.patch(f"/v1/agents/{first}/core-memory/blocks/customer", json={"value": "Ada likes coffee now."})
    seen = api.get(f"/v1/agents/{second}/core-memory/blocks/customer").json()
    assert seen["id"] == block["id"] and seen["value"] == "Ada likes coffee now."

    letta.agents.identities.detach(ada["id"], agent_id=second)
    assert api.get(f"/v1/agents/{second}/core-memory/blocks/customer").status_code == 404
    assert api.get(f"/v1/identities/{ada['id']}").json()["agent_ids"] == [first]
    again = api.patch(f"/v1/agents/{second}/identities/detach/{ada['id']}")
    assert again.status_code == 404 and "not attached" in again.text

    # an agent with its own block of that label keeps it: attaching is refused, naming the label
    api.post("/v1/blocks/", json={"label": "other", "value": "x"})
    own = api.post("/v1/blocks/", json={"label": "customer", "value": "mine"}).json()
    api.patch(f"/v1/agents/{second}/core-memory/blocks/attach/{own['id']}")
    clash = api.patch(f"/v1/agents/{second}/identities/attach/{ada['id']}")
    assert clash.status_code == 409 and "'customer'" in clash.text


def test_identity_ids_on_agent_create_and_update(api: TestClient, letta: Letta, openai_server: OpenAIServer) -> None:
    block = api.post("/v1/blocks/", json={"label": "customer", "value": "Ada likes tea."}).json()
    ada = _identity(api, "ada", block_ids=[block["id"]])
    bob = _identity(api, "bob")
    agent = letta.agents.create(model="openai/gpt-4o-mini", identity_ids=[ada["id"]])
    assert agent.identity_ids == [ada["id"]]
    assert block["id"] in [b.id for b in agent.memory.blocks]  # the identity's shared block came with it
    assert api.get(f"/v1/identities/{ada['id']}").json()["agent_ids"] == [agent.id]
    updated = letta.agents.update(agent.id, identity_ids=[bob["id"]])
    assert updated.identity_ids == [bob["id"]]
    assert block["id"] not in [b.id for b in updated.memory.blocks]
    assert letta.agents.retrieve(agent.id).identity_ids == [bob["id"]]
    # an unknown identity is named, and the agent is not made
    before = len(api.get("/v1/agents/").json())
    missing = api.post("/v1/agents/", json={"identity_ids": ["identity-00000000-0000-4000-8000-000000000000"]})
    assert missing.status_code == 404 and "identity" in missing.text
    assert len(api.get("/v1/agents/").json()) == before


def test_tags_list_with_query_parameters(api: TestClient, letta: Letta, openai_server: OpenAIServer) -> None:
    create_agent(api, openai_server, tags=["beta", "alpha", "prod-eu"])
    create_agent(api, openai_server, tags=["alpha", "gamma", "prod-us"])
    assert letta.tags.list() == ["alpha", "beta", "gamma", "prod-eu", "prod-us"]
    assert letta.tags.list(order="desc", limit=2) == ["prod-us", "prod-eu"]
    assert letta.tags.list(after="beta", limit=2) == ["gamma", "prod-eu"]
    assert letta.tags.list(before="gamma", order="asc") == ["alpha", "beta"]
    assert letta.tags.list(order="desc", after="gamma") == ["beta", "alpha"]
    assert letta.tags.list(name="PROD") == ["prod-eu", "prod-us"]
    assert letta.tags.list(query_text="amm") == ["gamma"]


def test_another_organization_sees_no_identity_nor_tag(
    api: TestClient, openai_server: OpenAIServer, db: Database, base_url: str
) -> None:
    agent_id = create_agent(api, openai_server, tags=["secret-tag"])["id"]
    ada = _identity(api)
    hostile_key = new_org_key(db)
    hostile = strict_client(base_url, hostile_key)
    assert hostile.tags.list() == []
    with TestClient(api.app, headers={"Authorization": f"Bearer {hostile_key}"}) as other:
        assert other.get("/v1/identities/").json() == []
        assert other.get(f"/v1/identities/{ada['id']}").status_code == 404
        assert other.patch(f"/v1/identities/{ada['id']}", json={"name": "x"}).status_code == 404
        assert other.put(f"/v1/identities/{ada['id']}/properties", json=[]).status_code == 404
        assert other.delete(f"/v1/identities/{ada['id']}").status_code == 404
        # the same identifier_key is another identity in another organization
        assert (
            other.post(
                "/v1/identities/", json={"identifier_key": "user-1", "name": "Eve", "identity_type": "user"}
            ).status_code
            == 200
        )
        mine = other.get("/v1/identities/").json()[0]["id"]
        assert other.patch(f"/v1/agents/{agent_id}/identities/attach/{mine}").status_code == 404
        assert (
            other.post(
                "/v1/identities/",
                json={"identifier_key": "k2", "name": "n", "identity_type": "user", "agent_ids": [agent_id]},
            ).status_code
            == 404
        )
    assert api.patch(f"/v1/agents/{agent_id}/identities/attach/{mine}").status_code == 404


def test_agents_and_blocks_listed_by_identity(
    api: TestClient, letta: Letta, openai_server: OpenAIServer, db: Database, base_url: str
) -> None:
    shared = api.post("/v1/blocks/", json={"label": "customer", "value": "Ada likes tea."}).json()
    other_block = api.post("/v1/blocks/", json={"label": "customer", "value": "Bo likes coffee."}).json()
    ada = _identity(api, "ada-list", block_ids=[shared["id"]])
    bo = _identity(api, "bo-list", block_ids=[other_block["id"]])
    for_ada = [letta.agents.create(model="openai/gpt-4o-mini", identity_ids=[ada["id"]]).id for _ in range(3)]
    for_bo = letta.agents.create(model="openai/gpt-4o-mini", identity_ids=[bo["id"]]).id
    create_agent(api, openai_server)  # no identity

    # paged through two at a time, each of ada's agents exactly once
    assert sorted(a.id for a in letta.agents.list(identity_id=ada["id"], limit=2)) == sorted(for_ada)
    assert [a.id for a in letta.agents.list(identifier_keys=["bo-list"])] == [for_bo]
    both = {a.id for a in letta.agents.list(identifier_keys=["ada-list", "bo-list"])}
    assert both == {*for_ada, for_bo}
    assert [b.id for b in letta.blocks.list(identity_id=ada["id"])] == [shared["id"]]
    assert [b.id for b in letta.blocks.list(identifier_keys=["bo-list"], label="customer")] == [other_block["id"]]
    assert list(letta.agents.list(identity_id="identity-00000000-0000-4000-8000-000000000000")) == []

    # another organization that names these identities (or reuses their keys) sees nothing of them
    hostile = strict_client(base_url, new_org_key(db))
    assert list(hostile.agents.list(identity_id=ada["id"])) == []
    assert list(hostile.blocks.list(identifier_keys=["ada-list"])) == []
