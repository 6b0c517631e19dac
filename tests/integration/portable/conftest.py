"""Two servers for moving agents: the session's app on the session's database, and a second app on a
second database of the same Postgres (as a deployed stack would be), each with its own organization."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.ids import PREFIXES
from o.store import evolution as evolution_store
from o.store.db import Database
from o.store.migrate import migrate
from tests import wiring
from tests.conftest import new_database
from tests.integration.agent.conftest import make_engine
from tests.integration.conftest import new_org_key
from tests.served import served  # noqa: F401  (re-exported for the tests of this folder)
from tests.servers.fixtures import openai_server  # noqa: F401
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

CUSTOM_TOOL = '''
def lookup_order(order_id: str) -> str:
    """Look an order up.

    Args:
        order_id: the order's number

    Returns:
        str: the order's status
    """
    return "shipped"
'''


@pytest.fixture(scope="module")
def second_db(pg_url: str) -> Iterator[Database]:
    """A second, freshly migrated database on the same server."""
    with new_database(pg_url, "o_second") as url:
        migrate(url)
        database = Database(url, min_size=1, max_size=4).open()
        yield database
        database.close()


@pytest.fixture
def source(db: Database) -> Iterator[TestClient]:
    """The server an agent leaves (its LLM calls go to the scripted OpenAI-protocol server)."""
    app = wiring.app(db, engine=make_engine(db))
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        yield client


@pytest.fixture
def target_app(second_db: Database) -> FastAPI:
    return wiring.app(second_db, max_body_bytes=64 * 1024)


@pytest.fixture
def target(target_app: FastAPI, second_db: Database) -> Iterator[TestClient]:
    """The server an agent arrives at: another database, another organization."""
    with TestClient(target_app, headers={"Authorization": f"Bearer {new_org_key(second_db)}"}) as client:
        yield client


def rich_agent(client: TestClient, server: OpenAIServer, db: Database) -> str:
    """An agent with something in every part a bundle carries: blocks, a custom tool, tool rules and
    variables, tags and metadata, a conversation (a run, its steps, tool calls), archival passages,
    two revisions, feedback and a finished evolution."""
    tool = client.post("/v1/tools/", json={"source_code": CUSTOM_TOOL, "tags": ["orders"]})
    assert tool.status_code == 200, tool.text
    agent = client.post(
        "/v1/agents/",
        json={
            "name": "porter",
            "description": "moves between servers",
            "system": "You are careful.",
            "llm_config": {
                "model": "gpt-4o-mini",
                "model_endpoint_type": "openai",
                "model_endpoint": server.base_url,
                "context_window": 128000,
            },
            "memory_blocks": [
                {"label": "persona", "value": "I am a careful assistant.", "limit": 2000, "description": "me"},
                {"label": "human", "value": "Unknown user.", "limit": 1000},
            ],
            "tool_ids": [tool.json()["id"]],
            "tool_rules": [{"tool_name": "lookup_order", "type": "exit_loop"}],
            "tags": ["portable", "test"],
            "metadata": {"team": "ops"},
            "secrets": {"ORDERS_TOKEN": "s3cret"},
        },
    )
    assert agent.status_code == 200, agent.text
    agent_id = agent.json()["id"]
    server.push(
        call(
            "core_memory_replace",
            label="human",
            old_content="Unknown user.",
            new_content="User: Kim.",
            request_heartbeat=True,
        ),
        call("send_message", message="Hello Kim!"),
    )
    sent = client.post(f"/v1/agents/{agent_id}/messages", json={"messages": [{"role": "user", "content": "I'm Kim"}]})
    assert sent.status_code == 200, sent.text
    for text in ("Kim likes sailing", "Kim's order 42 shipped", "Kim lives in Berkeley"):
        stored = client.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": text, "tags": ["kim"]})
        assert stored.status_code == 200, stored.text
    assert client.patch(f"/v1/agents/{agent_id}", json={"system": "You are careful and brief."}).status_code == 200
    run_id = client.get("/v1/runs/", params={"agent_id": agent_id}).json()[0]["id"]
    given = client.post(f"/v1/agents/{agent_id}/feedback", json={"score": 1.0, "comment": "good", "run_id": run_id})
    assert given.status_code == 201, given.text
    _finished_evolution(db, agent_id)
    return str(agent_id)


def _finished_evolution(db: Database, agent_id: str) -> None:
    """An evolution that ran to its end (rolled back), with its journal, as the loop leaves one."""
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
        assert org is not None
        evolution = evolution_store.insert(
            conn,
            evolution_id=f"evolution-{uuid.uuid4()}",
            organization_id=org["organization_id"],
            agent_id=agent_id,
            trigger="manual",
            base_revision=2,
            evaluator_hash="h",
            budget={"tokens": 1000},
            deadline=datetime.now(UTC) + timedelta(hours=1),
        )
        evolution_store.add_event(conn, evolution.id, "proposed", "a shorter system prompt", {"agent": agent_id})
        evolution_store.update(
            conn,
            evolution.id,
            {"status": "rolled_back", "decision": "rolled_back", "reason": "worse", "completed_at": datetime.now(UTC)},
        )


def normalized(value: Any, names: dict[str, str] | None = None) -> Any:
    """``value`` with every O id replaced by its order of first appearance (two agents that differ only
    in their ids normalize equal)."""
    names = {} if names is None else names
    if isinstance(value, str):
        head, sep, tail = value.partition("-")
        if sep and (head in PREFIXES or head == "feedback") and len(tail) == 36:
            return names.setdefault(value, f"<{head}:{len(names)}>")
        return value
    if isinstance(value, list):
        return [normalized(v, names) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v, names) for k, v in value.items()}
    return value


def without(value: Any, keys: set[str]) -> Any:
    """``value`` without these keys, at any depth."""
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    return value


def read_model(client: TestClient, agent_id: str) -> dict[str, Any]:
    """Everything the API shows of an agent, in one structure normalized together (ids by first use)."""
    return normalized(
        {
            "agent": client.get(f"/v1/agents/{agent_id}").json(),
            "messages": client.get(f"/v1/agents/{agent_id}/messages", params={"limit": 1000}).json(),
            "passages": client.get(f"/v1/agents/{agent_id}/archival-memory", params={"limit": 1000}).json(),
            "revisions": client.get(f"/v1/agents/{agent_id}/revisions").json(),
            "evolutions": client.get(f"/v1/agents/{agent_id}/evolutions").json(),
            "runs": client.get("/v1/runs/", params={"agent_id": agent_id}).json(),
        }
    )


def vectors(db: Database, agent_id: str) -> list[tuple[str, str | None, int | None]]:
    with db.read() as conn:
        found = conn.execute(
            "SELECT text, embedding_384::text AS v, embedding_dim FROM passages WHERE agent_id = %s ORDER BY text",
            (agent_id,),
        ).fetchall()
    return [(r["text"], r["v"], r["embedding_dim"]) for r in found]


def history(db: Database, agent_id: str) -> dict[str, Any]:
    """What the API does not list of an agent: its feedback and steps (normalized)."""
    with db.read() as conn:
        feedback = conn.execute(
            "SELECT run_id, score, comment, revision, created_at FROM feedback WHERE agent_id = %s", (agent_id,)
        ).fetchall()
        steps = conn.execute(
            "SELECT run_id, step_index, status, model, usage, message_id FROM steps WHERE agent_id = %s"
            " ORDER BY created_at",
            (agent_id,),
        ).fetchall()
        events = conn.execute(
            "SELECT e.phase, e.message, e.data FROM evolution_events e JOIN evolutions v ON v.id = e.evolution_id"
            " WHERE v.agent_id = %s ORDER BY e.id",
            (agent_id,),
        ).fetchall()
    return normalized({"agent": agent_id, "feedback": feedback, "steps": steps, "events": events})
