"""A live O over loopback HTTP with its ingestion worker running (the real local embedding model),
and letta-client in strict mode."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from letta_client import Letta

from o.agent.engine import Engine, llm_factory
from o.agent.file_services import FileLimits, FileServices
from o.agent.prompt import PromptCache
from o.config import AgentSettings
from o.memory.embeddings import LOCAL_EMBEDDERS
from o.memory.files.blobs import LocalBlobStore
from o.memory.files.ingest import Ingestion, Worker
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.served import served
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS, openai_llm_config
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call

FILES = Path(__file__).parents[2] / "data" / "files"


@dataclass
class Live:
    url: str
    model: OpenAIServer
    blobs: LocalBlobStore

    def llm_config(self) -> dict[str, Any]:
        return openai_llm_config(self.model.base_url)


@pytest.fixture(scope="module")
def live(db: Database) -> Iterator[Live]:
    blobs = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-folders-")))
    worker = Worker(Ingestion(db, blobs, LOCAL_EMBEDDERS, lease_s=60), poll_s=0.2)
    files = FileServices(blobs, FileLimits(max_upload_bytes=256 * 1024, org_quota_bytes=10 * 1024**2), worker.wake)
    with OpenAIServer(Script(default=lambda _: call("send_message", message="noted"))) as model:
        engine = Engine(
            db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(), prompts=PromptCache()
        )
        app = wiring.app(db, engine=engine, files=files)
        worker.start()
        try:
            with served(app) as url:
                yield Live(url, model, blobs)
        finally:
            worker.stop()
            engine.launcher.join(timeout=30)  # type: ignore[attr-defined]


@pytest.fixture
def letta(live: Live, db: Database) -> Letta:
    return Letta(base_url=live.url, api_key=new_org_key(db), max_retries=0, _strict_response_validation=True)


def upload(letta: Letta, folder_id: str, file_name: str, **options: Any) -> Any:
    with open(FILES / file_name, "rb") as f:
        return letta.folders.files.upload(folder_id, file=(file_name, f.read()), **options)


def settled(letta: Letta, folder_id: str, file_id: str, timeout: float = 60) -> Any:
    """The file once ingestion is done with it (completed or error)."""
    deadline = time.monotonic() + timeout
    while True:
        meta = letta.folders.files.retrieve(file_id, folder_id=folder_id)
        if meta.processing_status in ("completed", "error") or time.monotonic() > deadline:
            return meta
        time.sleep(0.1)
