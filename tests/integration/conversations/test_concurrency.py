"""Runs of different conversations of one agent go side by side; runs of one conversation take turns;
memory is shared (an edit made in one conversation is in the next step of another); a run that
crashes inside a conversation resumes there with one copy of everything."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o.agent import runs as run_api
from o.agent.engine import Engine
from o.agent.runner import drive, resume_stale
from o.agent.step import SimulatedCrash
from o.store.db import Database
from tests.integration.agent.conftest import create_agent
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, call, last_user_text


def _conversation(api: TestClient, agent_id: str) -> str:
    r = api.post("/v1/conversations/", params={"agent_id": agent_id}, json={})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _send(api: TestClient, conversation_id: str, text: str) -> list[str]:
    r = api.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"messages": [{"role": "user", "content": text}], "streaming": False},
    )
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"] if m["message_type"] == "assistant_message"]


def _echo(text: str) -> Reply:
    return Reply(tool_calls=(ScriptedCall("send_message", {"message": text}),))


def test_two_conversations_of_one_agent_run_side_by_side(api: TestClient, openai_server: OpenAIServer) -> None:
    """Each model call waits until the other conversation's is in flight too (a retry of the same call
    does not count): were the runs serialized, as runs of one conversation are, it would wait in vain
    and answer "alone"."""
    agent = create_agent(api, openai_server)
    one, two = _conversation(api, agent["id"]), _conversation(api, agent["id"])
    arrived: set[str] = set()
    both = threading.Condition()

    def meet(body: dict[str, Any]) -> Reply:
        text = last_user_text(body)
        with both:
            arrived.add(text)
            both.notify_all()
            met = both.wait_for(lambda: len(arrived) == 2, timeout=20)
        return _echo(text if met else "alone")

    openai_server.script.default = meet
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda c: _send(api, c[0], c[1]), [(one, "to one"), (two, "to two")]))
    assert answers == [["to one"], ["to two"]]


def test_runs_of_one_conversation_take_turns(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    conversation = _conversation(api, agent["id"])
    lock, in_flight, most = threading.Lock(), [0], [0]

    def slow_echo(body: dict[str, Any]) -> Reply:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return _echo(last_user_text(body))

    openai_server.script.default = slow_echo
    texts = [f"message {i}" for i in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda t: _send(api, conversation, t), texts))
    assert answers == [[t] for t in texts]  # each reply answers its own message
    assert most[0] == 1
    rows = api.get(f"/v1/conversations/{conversation}/messages", params={"order": "asc"}).json()
    turns = [
        (m["message_type"], m["content"]) for m in rows if m["message_type"] in ("user_message", "assistant_message")
    ]
    assert all(u[1] == a[1] for u, a in zip(turns[::2], turns[1::2], strict=True)), turns


def _system_of(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


def test_a_memory_edit_in_one_conversation_is_in_the_next_step_of_another(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    one, two = _conversation(api, agent["id"]), _conversation(api, agent["id"])
    openai_server.script.default = lambda body: _echo(last_user_text(body))
    _send(api, two, "before")
    assert "Likes tea." not in _system_of(openai_server.requests[-1])
    openai_server.push(
        call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True),
        call("send_message", message="noted"),
    )
    assert _send(api, one, "I like tea") == ["noted"]
    _send(api, two, "after")
    last = openai_server.requests[-1]
    assert last_user_text(last) == "after" and "Likes tea." in _system_of(last)
    # the conversations' histories stayed apart: two's prompt has none of one's messages
    assert "I like tea" not in str(last["messages"][1:])


def test_a_crash_inside_a_conversation_resumes_there_once(
    api: TestClient, engine: Engine, openai_server: OpenAIServer, db: Database
) -> None:
    agent = create_agent(api, openai_server)
    conversation = _conversation(api, agent["id"])
    openai_server.push(
        call("core_memory_append", label="human", content="Likes tea.", request_heartbeat=True),
        call("send_message", message="Noted: tea."),
    )
    org = agent["organization_id"] if "organization_id" in agent else _org(db, agent["id"])
    with db.transaction() as conn:
        started = run_api.start(
            conn,
            org,
            agent["id"],
            [run_api.InputMessage("user", "I like tea")],
            {"max_steps": 10},
            conversation_id=conversation,
        )

    def die(at: str) -> None:
        if at == "after_tool":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        drive(engine.deps(fault=die), started.run.id)
    with db.transaction() as conn:  # the worker died a minute ago
        conn.execute("UPDATE runs SET updated_at = now() - interval '2 minutes' WHERE id = %s", (started.run.id,))
    [outcome] = [o for o in resume_stale(engine.deps()) if o.run_id == started.run.id]
    assert (outcome.next, outcome.stop_reason) == ("done", "end_turn")
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT id, role, conversation_id FROM messages WHERE agent_id = %s ORDER BY seq", (agent["id"],)
        ).fetchall()
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant", "tool"]
    assert {r["conversation_id"] for r in rows} == {conversation}
    assert all(n == 1 for n in Counter(r["id"] for r in rows).values())
    human = api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"]
    assert human.count("Likes tea.") == 1
    assert api.get(f"/v1/agents/{agent['id']}/messages").json() == []  # the agent's own history is untouched


def _org(db: Database, agent_id: str) -> str:
    with db.transaction() as conn:
        row = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
    assert row is not None
    return str(row["organization_id"])


def test_busy_and_cancel_are_per_conversation(
    api: TestClient, engine: Engine, openai_server: OpenAIServer, db: Database
) -> None:
    agent = create_agent(api, openai_server)
    one, two = _conversation(api, agent["id"]), _conversation(api, agent["id"])
    openai_server.script.default = lambda body: _echo(last_user_text(body))
    with db.transaction() as conn:  # a run of one that nobody drives yet: one is busy
        busy = run_api.start(
            conn,
            _org(db, agent["id"]),
            agent["id"],
            [run_api.InputMessage("user", "first")],
            {"max_steps": 5},
            conversation_id=one,
        ).run.id
    reject = {"X-O-If-Busy": "reject"}
    body = {"messages": [{"role": "user", "content": "now"}], "streaming": False}
    r = api.post(f"/v1/conversations/{one}/messages", json=body, headers=reject)
    assert r.status_code == 409 and r.json()["code"] == "conversation_busy", r.text
    r = api.post(f"/v1/conversations/{two}/messages", json=body, headers=reject)
    assert r.status_code == 200, r.text  # the other conversation is free
    assert api.post(f"/v1/conversations/{two}/cancel").json() == {}  # nothing runs there: a no-op
    assert api.post(f"/v1/conversations/{one}/cancel").json() == {busy: "cancelled"}
    outcome = drive(engine.deps(), busy)  # its worker sees the cancel before calling the model
    assert str(outcome.stop_reason) == "cancelled"
    assert api.get(f"/v1/runs/{busy}").json()["status"] == "cancelled"
