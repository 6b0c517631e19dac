"""One live O (uvicorn on the real Postgres) for the SDK tests, its LLM a local OpenAI-protocol server
that always answers, and letta-client in strict mode: every response is validated against the SDK's
own pydantic types, so a field O shapes differently fails the call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from letta_client import Letta

from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.config import AgentSettings
from o.memory.embeddings import LOCAL_EMBEDDERS
from o.memory.files.ingest import Ingestion, Worker
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.served import served
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS, openai_llm_config
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call


def _always_answer(_: dict[str, Any]) -> Any:
    return call("send_message", message="noted")


@dataclass
class Live:
    """A served app: its URL and the model server its agents talk to."""

    url: str
    app: FastAPI
    model: OpenAIServer
    engine: Engine

    def llm_config(self) -> dict[str, Any]:
        return openai_llm_config(self.model.base_url)


@pytest.fixture(scope="module")
def live(db: Database) -> Iterator[Live]:
    with OpenAIServer(Script(default=_always_answer)) as model:
        engine = Engine(
            db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(), prompts=PromptCache()
        )
        app = wiring.app(db, engine=engine)
        # uploaded files are ingested as `o serve` does it (the local embedding model)
        ingest = Worker(Ingestion(db, wiring.FILES.blobs, LOCAL_EMBEDDERS), poll_s=0.1).start()
        with served(app) as url:
            try:
                yield Live(url, app, model, engine)
            finally:
                ingest.stop()
                engine.launcher.join(timeout=30)  # type: ignore[attr-defined]


def strict_client(live: Live, key: str) -> Letta:
    return Letta(base_url=live.url, api_key=key, max_retries=0, _strict_response_validation=True)


def raw_client(live: Live, key: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module")
def org_key(db: Database) -> str:
    return new_org_key(db)
