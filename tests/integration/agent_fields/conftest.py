"""An app whose operator endpoints for OpenAI (chat and embeddings) and Anthropic are local protocol
servers, driven through the real letta-client SDK in strict mode."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from letta_client import Letta

from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.memory.embeddings import Embedders
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.fixtures import FAST_OPTIONS, LOCAL_EMBEDDING_ENDPOINTS, LOOPBACK, TEST_KEYS, operator_at
from tests.servers.openai_server import OpenAIServer


@pytest.fixture(scope="module")
def openai() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def anthropic() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.fixture(scope="module")
def engine(db: Database, openai: OpenAIServer, anthropic: AnthropicServer) -> Engine:
    """The operator's OpenAI and Anthropic endpoints are the protocol servers (they get the operator's
    keys); agents may also name an endpoint on 127.0.0.1 (without keys); nothing else."""
    options = operator_at(FAST_OPTIONS, openai=openai.base_url, anthropic=anthropic.origin)
    rules = LOCAL_EMBEDDING_ENDPOINTS
    embedding_rules = replace(rules, operator=tuple({**dict(rules.operator), "openai": openai.base_url}.items()))
    return Engine(
        db,
        llm_factory(TEST_KEYS, options),
        prompts=PromptCache(),
        embedders=Embedders(TEST_KEYS, endpoints=embedding_rules, outbound=LOOPBACK),
    )


@pytest.fixture(scope="module")
def fields_app(db: Database, engine: Engine) -> FastAPI:
    return wiring.app(db, engine=engine)


@pytest.fixture(scope="module")
def base_url(fields_app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        uvicorn.Config(fields_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def api_key(db: Database) -> str:
    return new_org_key(db)


@pytest.fixture
def http(fields_app: FastAPI, api_key: str) -> Iterator[TestClient]:
    """The same app and organization without the SDK: for requests the SDK's types would not let through."""
    with TestClient(fields_app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        yield client


@pytest.fixture
def letta(base_url: str, api_key: str) -> Letta:
    """The SDK as a user runs it, validating every response against its own types."""
    return Letta(base_url=base_url, api_key=api_key, max_retries=0, _strict_response_validation=True)
