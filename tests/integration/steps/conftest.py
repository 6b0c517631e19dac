"""Steps fixtures: the agent app served over HTTP on loopback, the scripted OpenAI-wire server, and the
real letta-client in strict mode (every response validated against the SDK's own types)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from letta_client import Letta

from o.store.db import Database
from tests.integration.agent.conftest import agent_app, engine  # noqa: F401
from tests.integration.conftest import new_org_key
from tests.served import served
from tests.servers.fixtures import openai_server  # noqa: F401


@pytest.fixture
def base_url(agent_app: FastAPI) -> Iterator[str]:  # noqa: F811
    with served(agent_app) as url:
        yield url


def strict_client(base_url: str, key: str) -> Letta:
    return Letta(base_url=base_url, api_key=key, max_retries=0, _strict_response_validation=True)


@pytest.fixture
def key(db: Database) -> str:
    return new_org_key(db)


@pytest.fixture
def letta(base_url: str, key: str) -> Letta:
    return strict_client(base_url, key)


@pytest.fixture
def api(agent_app: FastAPI, key: str) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(agent_app, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
