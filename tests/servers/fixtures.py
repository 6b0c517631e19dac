"""Pytest fixtures that start the scripted provider servers.

Import them into a conftest.py: ``from tests.servers.fixtures import openai_server, anthropic_server``.
Each test gets fresh servers (binding an ephemeral loopback port takes well under a millisecond).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from o.llm.client import ClientOptions, RetryPolicy
from o.llm.endpoints import EndpointRules
from o.llm.keys import StaticKeySource
from o.net.outbound import OutboundPolicy
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer

# Keys the servers accept (they only check that one is present).
TEST_KEYS = StaticKeySource({"openai": "sk-test", "anthropic": "sk-ant-test", "groq": "gsk-test"})
# The test suite's operator lets agents name the protocol servers on loopback as their endpoints (as a
# tenant's endpoints they get no operator key), and lets calls connect to loopback, as `o serve` does.
LOCAL_ENDPOINTS = replace(EndpointRules.for_llm(), allowed=("127.0.0.1",))
LOCAL_EMBEDDING_ENDPOINTS = replace(EndpointRules.for_embeddings(), allowed=("127.0.0.1",))
LOOPBACK = OutboundPolicy(allow_loopback=True)
# Millisecond backoff so retry tests stay fast.
FAST_OPTIONS = ClientOptions(
    timeout_s=5.0,
    connect_timeout_s=1.0,
    retry=RetryPolicy(2, 0.001, 0.005),
    endpoints=LOCAL_ENDPOINTS,
    outbound=LOOPBACK,
)


def openai_llm_config(base_url: str) -> dict[str, Any]:
    """An agent's llm_config for a local OpenAI-protocol server."""
    return {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": base_url,
        "context_window": 128000,
    }


def operator_at(options: ClientOptions, **endpoints: str) -> ClientOptions:
    """``options`` with ``endpoints`` (provider=URL) as the operator's own: the operator's keys go there."""
    rules = options.endpoints
    return replace(options, endpoints=replace(rules, operator=tuple({**dict(rules.operator), **endpoints}.items())))


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def llm_keys() -> StaticKeySource:
    return TEST_KEYS


@pytest.fixture
def llm_options() -> ClientOptions:
    return FAST_OPTIONS
