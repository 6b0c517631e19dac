"""Agent-loop fixtures: an app whose engine talks to the scripted local provider servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.agent.runner import StateMachineLauncher
from o.aws.stepfunctions import StateMachine
from o.config import AgentSettings
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS, anthropic_server, openai_server  # noqa: F401
from tests.servers.openai_server import OpenAIServer


def make_engine(db: Database, *, sfn: Any = None, **settings: Any) -> Engine:
    """An engine on the local protocol servers; with ``sfn`` (a Step Functions client) its runs go through
    the state machine named by ``state_machine_arn``, as the composition root wires it on AWS."""
    engine = Engine(
        db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(**settings), prompts=PromptCache()
    )
    if sfn is not None:
        engine.remote = StateMachineLauncher(db, StateMachine(settings.get("state_machine_arn"), client=sfn))
    return engine


@pytest.fixture
def engine(db: Database) -> Engine:
    return make_engine(db)


@pytest.fixture
def agent_app(db: Database, engine: Engine) -> FastAPI:
    return wiring.app(db, engine=engine)


@pytest.fixture
def api(agent_app: FastAPI, db: Database) -> Iterator[TestClient]:
    with TestClient(agent_app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as c:
        yield c


def create_agent(client: TestClient, server: Any, **extra: Any) -> dict[str, Any]:
    """An agent whose LLM is ``server`` (OpenAI or Anthropic wire protocol)."""
    if isinstance(server, OpenAIServer):
        llm = {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": server.base_url,
            "context_window": 128000,
        }
    else:
        llm = {
            "model": "claude-3-5-haiku-latest",
            "model_endpoint_type": "anthropic",
            "model_endpoint": server.origin,
            "context_window": 200000,
        }
    llm.update(extra.pop("llm", {}))
    body = {
        "name": "tester",
        "llm_config": llm,
        "memory_blocks": [
            {"label": "persona", "value": "I am a careful assistant.", "limit": 2000},
            {"label": "human", "value": "The user has not told me their name.", "limit": 2000},
        ],
        **extra,
    }
    response = client.post("/v1/agents/", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def say(client: TestClient, agent_id: str, text: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"/v1/agents/{agent_id}/messages", json={"messages": [{"role": "user", "content": text}], **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


def system_prompt(request_body: dict[str, Any]) -> str:
    """The system text an LLM request carried (OpenAI: first message; Anthropic: ``system``)."""
    if "system" in request_body:
        system = request_body["system"]
        return system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
    return request_body["messages"][0]["content"]
