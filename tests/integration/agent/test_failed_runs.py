"""Failures are clean: a failed run ends failed with its error, even when ending it fails at first, and
its messages stay in the history but leave the next prompt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from psycopg import sql

from o.store.db import Database
from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import echo, fail


def _history(api: TestClient, agent_id: str) -> list[tuple[str, str]]:
    rows = api.get(f"/v1/agents/{agent_id}/messages", params={"limit": 100, "order": "asc"}).json()
    return [(m["message_type"], m.get("content") or "") for m in rows]


def _user_texts(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], str)]


def _runs(api: TestClient, agent_id: str) -> list[dict[str, Any]]:
    return list(api.get("/v1/runs/", params={"agent_id": agent_id}).json())


def test_a_failed_sends_messages_stay_in_the_history_but_leave_the_next_prompt(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    openai_server.script.default = fail(500, "upstream down")
    failed = api.post(
        f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "nobody answers this"}]}
    )
    assert failed.status_code == 502, failed.text
    openai_server.script.default = echo()
    answer = say(api, agent["id"], "and this?")
    assert [m["content"] for m in answer["messages"] if m["message_type"] == "assistant_message"] == ["and this?"]
    # the failed turn is not in the prompt: the model is not asked to answer it again
    assert "nobody answers this" not in _user_texts(openai_server.requests[-1])
    assert _user_texts(openai_server.requests[-1])[-1] == "and this?"
    # ...but the history keeps it, visibly, with its run failed
    assert ("user_message", "nobody answers this") in _history(api, agent["id"])
    assert sorted(r["status"] for r in _runs(api, agent["id"])) == ["completed", "failed"]


@contextmanager
def outcomes_refused_for(db: Database, agent_id: str) -> Iterator[None]:
    """Make Postgres itself refuse to record this agent's run outcomes (a real failure inside the
    transaction that ends a run), for the duration."""
    name = f"refuse_outcome_{uuid.uuid4().hex[:12]}"
    with db.transaction() as conn:
        conn.execute(
            sql.SQL(
                """CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN RAISE EXCEPTION 'the outcome store is broken'; END $$"""
            ).format(fn=sql.Identifier(name))
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER {t} BEFORE INSERT ON revision_outcomes FOR EACH ROW "
                "WHEN (NEW.agent_id = {agent}) EXECUTE FUNCTION {fn}()"
            ).format(t=sql.Identifier(name), agent=sql.Literal(agent_id), fn=sql.Identifier(name))
        )
    try:
        yield
    finally:
        with db.transaction() as conn:
            conn.execute(sql.SQL("DROP TRIGGER {t} ON revision_outcomes").format(t=sql.Identifier(name)))
            conn.execute(sql.SQL("DROP FUNCTION {fn}()").format(fn=sql.Identifier(name)))


def test_a_run_whose_failure_path_fails_still_ends_failed_with_its_error(
    api: TestClient, openai_server: OpenAIServer, db: Database
) -> None:
    agent = create_agent(api, openai_server)
    openai_server.script.default = fail(500, "upstream down")
    with outcomes_refused_for(db, agent["id"]):
        r = api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code >= 500
    [run] = _runs(api, agent["id"])
    assert run["status"] == "failed", run
    assert run["stop_reason"] == "llm_api_error"
    # both failures are on the run: the step's, and the one that hit ending it
    assert "HTTP 500" in run["error"] and "the outcome store is broken" in run["error"]
    assert api.get("/v1/runs/", params={"agent_id": agent["id"], "active": True}).json() == []
