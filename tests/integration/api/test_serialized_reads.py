"""GET messages, GET agent and a list of agents write each message's and agent's JSON once per version of
its rows (o/api/serialized.py): the answer must be the same bytes as written afresh from the stored rows,
a change must show at once, and another organization must see nothing of it."""

from __future__ import annotations

import json

import pydantic_core
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.agent import lifecycle
from o.api.responses import model_json
from o.api.schemas.agent_state import AgentState
from o.api.schemas.messages import to_letta_list
from o.ids import new_id
from o.store import messages as message_store
from o.store.db import Database
from o.store.pages import Page
from tests.integration.conftest import new_org_key


def _history(agent: str, org: str) -> list[dict[str, object]]:
    call = {"id": "call-1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "ü"}'}}
    said = {"id": "call-2", "type": "function", "function": {"name": "send_message", "arguments": '{"message": "hi"}'}}
    base = {"organization_id": org, "agent_id": agent}
    return [
        {**base, "role": "system", "content": [{"type": "text", "text": "you are O"}]},
        {**base, "role": "user", "content": [{"type": "text", "text": "hello \u2603 \\ \" \n"}], "otid": "o-1"},
        {**base, "role": "assistant", "content": [{"type": "text", "text": "thinking"}], "tool_calls": [call, said]},
        {**base, "role": "tool", "name": "lookup", "tool_call_id": "call-1", "content": [{"type": "text", "text": "x"}],
         "tool_returns": [{"status": "error", "func_response": "boom", "stdout": ["a"], "stderr": []}]},
        {**base, "role": "tool", "name": "send_message", "tool_call_id": "call-2", "content": []},
        {**base, "role": "assistant", "content": [{"type": "text", "text": "done"}]},
        {**base, "role": "approval", "metadata": {"approve": True, "approval_request_id": "call-1", "reason": None}},
    ]  # fmt: skip


def _org(db: Database, agent: str) -> str:
    with db.read() as conn:
        return conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent,)).fetchone()["organization_id"]


def _fresh(db: Database, org: str, agent: str, use_assistant_message: bool) -> bytes:
    """The page as written from the rows, without the cache."""
    with db.read() as conn:
        rows = message_store.list_page(conn, org, agent, Page(limit=50, order="desc"), conversation=None)
    return pydantic_core.to_json(to_letta_list(rows, use_assistant_message=use_assistant_message))


def test_a_page_of_messages_is_the_same_bytes_cached_or_not_and_shows_changes(app: FastAPI, db: Database) -> None:
    key = new_org_key(db)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        agent = client.post("/v1/agents/", json={"name": "cached", "memory_blocks": []}).json()["id"]
        org = _org(db, agent)
        with db.transaction() as conn:
            message_store.insert_many(conn, [{"id": new_id("message"), **m} for m in _history(agent, org)])
        path = f"/v1/agents/{agent}/messages?limit=50"
        for flag in (True, False):
            query = "" if flag else "&use_assistant_message=false"
            first, again = client.get(path + query), client.get(path + query)  # written, then from the cache
            assert first.status_code == again.status_code == 200
            assert first.content == again.content == _fresh(db, org, agent, flag)
        assert len(json.loads(first.content)) > 7  # the assistant's two calls are items of their own
        with db.transaction() as conn:
            conn.execute(
                """UPDATE messages SET content = '[{"type": "text", "text": "edited"}]'
                   WHERE agent_id = %s AND role = 'user'""",
                (agent,),
            )
        changed = client.get(path)
        assert changed.content == _fresh(db, org, agent, True) and b"edited" in changed.content
        other = TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"})
        assert other.get(path).status_code == 404


def _fresh_agents(db: Database, org: str, agent_ids: list[str]) -> list[bytes]:
    """Each agent's AgentState built and serialized afresh, without the cache."""
    with db.read() as conn:
        return [model_json(AgentState.from_view(lifecycle.get(conn, org, agent_id))).body for agent_id in agent_ids]


def test_agents_are_the_same_bytes_cached_or_not_and_show_every_change(app: FastAPI, db: Database) -> None:
    key = new_org_key(db)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "I am O."}]
        ids = [client.post("/v1/agents/", json={"name": f"a{i}", "memory_blocks": blocks}).json()["id"] for i in "123"]
        with db.read() as conn:
            org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (ids[0],)).fetchone()[
                "organization_id"
            ]

        def check() -> dict[str, object]:
            fresh = _fresh_agents(db, org, ids)
            for _ in range(2):  # written, then from the cache
                assert [client.get(f"/v1/agents/{i}").content for i in ids] == fresh
                assert client.get("/v1/agents/?limit=50&order=asc").content == b"[" + b",".join(fresh) + b"]"
            return json.loads(fresh[0])

        state = check()
        assert state["tools"] and state["blocks"]
        agent = ids[0]
        attached = {"agent_ids": [agent]}
        changes = [
            ("PATCH", f"/v1/agents/{agent}/core-memory/blocks/human", {"value": "Name: Ada L."}),
            ("PATCH", f"/v1/agents/{agent}/tools/detach/{state['tools'][0]['id']}", None),
            ("PATCH", f"/v1/agents/{agent}", {"secrets": {"TOKEN": "s3cret"}}),
            ("PATCH", f"/v1/agents/{agent}", {"description": "renamed"}),
            ("POST", "/v1/identities/", {"identifier_key": "k", "name": "n", "identity_type": "user", **attached}),
        ]  # fmt: skip
        for method, path, body in changes:
            before = client.get(f"/v1/agents/{agent}").content
            assert client.request(method, path, json=body).status_code == 200, path
            assert check() != json.loads(before), path
        assert b"s3cret" not in client.get(f"/v1/agents/{agent}").content
        other = TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"})
        assert other.get(f"/v1/agents/{agent}").status_code == 404
        assert other.get("/v1/agents/").json() == []
