"""An agent's conversations move with it in O's bundle (new ids, each with its own messages and the
fork it came from), and resetting the agent's own history leaves its conversations' context alone."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from o.agent.portable import frames
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.integration.portable.conftest import second_db, source, target, target_app  # noqa: F401
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, last_user_text


def _echo(body: dict[str, Any]) -> Reply:
    return Reply(tool_calls=(ScriptedCall("send_message", {"message": last_user_text(body)}),))


def _say(client: TestClient, conversation_id: str, text: str, **extra: Any) -> None:
    body = {"messages": [{"role": "user", "content": text}], "streaming": False, **extra}
    r = client.post(f"/v1/conversations/{conversation_id}/messages", json=body)
    assert r.status_code == 200, r.text


def _conversations(client: TestClient, agent_id: str) -> list[tuple[str | None, list[str]]]:
    listed = client.get("/v1/conversations/", params={"agent_id": agent_id, "order": "asc"}).json()
    out = []
    for c in listed:
        messages = client.get(f"/v1/conversations/{c['id']}/messages", params={"order": "asc"}).json()
        out.append((c["summary"], [m.get("content") or "" for m in messages]))
    return out


def test_conversations_move_with_their_agent(
    source: TestClient,  # noqa: F811
    target: TestClient,  # noqa: F811
    second_db: Database,  # noqa: F811
    openai_server: OpenAIServer,
) -> None:
    openai_server.script.default = _echo
    agent = create_agent(source, openai_server)
    first = source.post("/v1/conversations/", params={"agent_id": agent["id"]}, json={"summary": "first"}).json()
    _say(source, first["id"], "hello from the first")
    forked = source.post(f"/v1/conversations/{first['id']}/fork").json()
    source.patch(f"/v1/conversations/{forked['id']}", json={"summary": "forked"})
    _say(source, forked["id"], "only in the fork")

    exported = source.get(f"/v1/agents/{agent['id']}/bundle")
    imported = target.post("/v1/agents/import-bundle", content=exported.content, headers=frames_headers())
    assert imported.status_code == 200, imported.text
    moved = imported.json()["agent_id"]
    assert _conversations(target, moved) == _conversations(source, agent["id"])
    ids = {c["summary"]: c["id"] for c in target.get("/v1/conversations/", params={"agent_id": moved}).json()}
    assert first["id"] not in ids.values()
    with second_db.read() as conn:
        row = conn.execute("SELECT forked_from FROM conversations WHERE id = %s", (ids["forked"],)).fetchone()
    assert row is not None and row["forked_from"] == ids["first"]


def test_resetting_the_agents_history_leaves_its_conversations_alone(
    source: TestClient,  # noqa: F811
    openai_server: OpenAIServer,
) -> None:
    openai_server.script.default = _echo
    agent = create_agent(source, openai_server)
    conversation = source.post("/v1/conversations/", params={"agent_id": agent["id"]}, json={}).json()["id"]
    _say(source, conversation, "kept in context")
    _say(source, "default", "reset me", agent_id=agent["id"])
    in_context = source.get(f"/v1/conversations/{conversation}").json()["in_context_message_ids"]
    assert source.patch(f"/v1/agents/{agent['id']}/reset-messages").status_code == 200
    assert source.get(f"/v1/conversations/{conversation}").json()["in_context_message_ids"] == in_context
    assert source.get(f"/v1/agents/{agent['id']}/context").json()["num_messages"] == 1  # the system prompt only


def frames_headers() -> dict[str, str]:
    return {"content-type": frames.MEDIA_TYPE}
