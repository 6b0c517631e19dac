"""One run at a time per conversation: concurrent sends to one agent queue, and each reply answers its
own message (the scripted model echoes the last user message it was sent)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o.agent import runs as run_api
from o.agent.runs import ConversationBusy, InputMessage
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, echo

SENDS = 8


def _history(api: TestClient, agent_id: str) -> list[tuple[str, str]]:
    rows = api.get(f"/v1/agents/{agent_id}/messages", params={"limit": 100, "order": "asc"}).json()
    return [(m["message_type"], m.get("content") or "") for m in rows if m["message_type"] != "system_message"]


def _alternates(history: list[tuple[str, str]]) -> None:
    """Each user message is followed by the reply that echoes it, before the next user message."""
    turns = [(kind, text) for kind, text in history if kind in ("user_message", "assistant_message")]
    assert len(turns) == 2 * SENDS, turns
    for user, reply in zip(turns[::2], turns[1::2], strict=True):
        assert user[0] == "user_message" and reply == ("assistant_message", user[1]), turns


def test_concurrent_sends_queue_and_each_reply_answers_its_own_message(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    openai_server.script.default = echo(delay_s=0.02)
    agent = create_agent(api, openai_server)

    def send(i: int) -> tuple[str, Any]:
        text = f"message number {i}"
        r = api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": text}]})
        assert r.status_code == 200, r.text
        said = [m["content"] for m in r.json()["messages"] if m["message_type"] == "assistant_message"]
        return text, said

    with ThreadPoolExecutor(max_workers=SENDS) as pool:
        answers = list(pool.map(send, range(SENDS)))
    assert all(said == [text] for text, said in answers), answers
    _alternates(_history(api, agent["id"]))
    # every prompt ended with its own message, and carried the earlier turns in order
    prompts = [[m for m in body["messages"] if m["role"] == "user"] for body in openai_server.requests]
    assert sorted(len(p) for p in prompts) == list(range(1, SENDS + 1))


def test_async_sends_queue_too(api: TestClient, openai_server: OpenAIServer) -> None:
    openai_server.script.default = echo(delay_s=0.02)
    agent = create_agent(api, openai_server)

    def send(i: int) -> str:
        r = api.post(
            f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": f"async {i}"}]}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    with ThreadPoolExecutor(max_workers=SENDS) as pool:
        run_ids = list(pool.map(send, range(SENDS)))
    deadline = time.monotonic() + 60
    while any(api.get(f"/v1/runs/{run_id}").json()["status"] != "completed" for run_id in run_ids):
        assert time.monotonic() < deadline, "the queued runs did not all complete"
        time.sleep(0.1)
    _alternates(_history(api, agent["id"]))


def test_a_queued_message_enters_the_history_only_when_its_turn_comes(
    api: TestClient, openai_server: OpenAIServer, db: Database
) -> None:
    # the first run's reply takes a while: the second run waits behind it
    openai_server.push(Reply(text="first answer", delay_s=1.0))
    openai_server.script.default = echo()
    agent = create_agent(api, openai_server)
    first = api.post(
        f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "one"}]}
    )
    deadline = time.monotonic() + 10
    while not openai_server.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = api.post(
        f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "two"}]}
    )
    assert second.status_code == 200
    assert second.json()["metadata"]["queue"] == 1
    assert [t for _k, t in _history(api, agent["id"])] == ["one"]  # "two" waits outside the history
    deadline = time.monotonic() + 30
    while api.get(f"/v1/runs/{second.json()['id']}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get(f"/v1/runs/{first.json()['id']}").json()["status"] == "completed"
    assert _history(api, agent["id"]) == [
        ("user_message", "one"),
        ("assistant_message", "first answer"),
        ("user_message", "two"),
        ("assistant_message", "two"),
    ]


def test_a_queued_run_can_be_cancelled_before_its_turn(api: TestClient, openai_server: OpenAIServer) -> None:
    openai_server.push(Reply(text="slow", delay_s=1.0))
    agent = create_agent(api, openai_server)
    api.post(f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "one"}]})
    deadline = time.monotonic() + 10
    while not openai_server.requests:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queued = api.post(
        f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "never"}]}
    ).json()
    cancelled = api.post(f"/v1/runs/{queued['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    deadline = time.monotonic() + 30
    while (status := api.get(f"/v1/runs/{queued['id']}").json()["status"]) not in ("cancelled", "completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "cancelled"
    assert "never" not in [t for _k, t in _history(api, agent["id"])]
    assert len(openai_server.requests) == 1


def test_a_caller_that_will_not_wait_is_refused_with_409_while_the_agent_is_busy(
    api: TestClient, openai_server: OpenAIServer, db: Database
) -> None:
    openai_server.push(Reply(text="slow", delay_s=1.0))
    agent = create_agent(api, openai_server)
    busy = api.post(f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "a"}]})
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
    with pytest.raises(ConversationBusy) as refused, db.transaction() as conn:
        run_api.start(conn, org["organization_id"], agent["id"], [InputMessage("user", "b")], {}, wait=False)
    assert refused.value.status_code == 409 and refused.value.details["run_id"] == busy.json()["id"]
    deadline = time.monotonic() + 30
    while api.get(f"/v1/runs/{busy.json()['id']}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_if_busy_reject_header_refuses_a_send_with_409_instead_of_queueing(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    openai_server.push(Reply(text="slow", delay_s=1.0))
    openai_server.script.default = echo()
    agent = create_agent(api, openai_server)
    busy = api.post(f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "a"}]})
    refused = api.post(
        f"/v1/agents/{agent['id']}/messages",
        json={"messages": [{"role": "user", "content": "b"}]},
        headers={"X-O-If-Busy": "reject"},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "conversation_busy"
    assert refused.json()["context"]["run_id"] == busy.json()["id"]
    assert "b" not in [t for _k, t in _history(api, agent["id"])]
    deadline = time.monotonic() + 30
    while api.get(f"/v1/runs/{busy.json()['id']}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # idle again: the same header sends at once
    ok = api.post(
        f"/v1/agents/{agent['id']}/messages",
        json={"messages": [{"role": "user", "content": "c"}]},
        headers={"X-O-If-Busy": "reject"},
    )
    assert ok.status_code == 200, ok.text
