"""The app as the composition root wires it, with the parts a test swaps in (an engine whose LLM
clients talk to local protocol servers, evolution deps with a short bake, a sandbox)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import FastAPI

from o import runtime
from o.agent.engine import Engine
from o.agent.file_services import FileServices, TransferServices
from o.agent.transfer_jobs import Jobs, launch
from o.api.app import create_app
from o.api.deps import Services
from o.config import Settings, settings_from
from o.evolution.loop import EvolutionDeps
from o.memory.files.blobs import LocalBlobStore
from o.store.db import Database
from o.tools.sandbox.base import Sandbox
from o.tools.secrets.envelope import SecretBox
from o.tools.secrets.keyfile import KeyFile

# what an empty environment configures: local adapters, no provider keys
DEFAULTS = settings_from({})
# the tests' tool secrets: a key file of this test session (made on first use), never the user's own
# an operator who configured the hosted providers (keys that are never sent anywhere in these tests):
# agents may name their models; nothing calls them
KEYED = settings_from({"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test", "GROQ_API_KEY": "gsk-test"})
SECRETS = SecretBox(KeyFile(Path(tempfile.mkdtemp(prefix="o-test-secrets-")) / "secrets.key"))
# uploaded files' bytes: a directory of this test session, never the user's data dir
BLOBS = LocalBlobStore(Path(tempfile.mkdtemp(prefix="o-test-files-")))
FILES = FileServices(BLOBS)


def services(
    db: Database,
    *,
    engine: Engine | None = None,
    evolution: EvolutionDeps | None = None,
    sandbox: Sandbox | None = None,
    secrets: SecretBox = SECRETS,
    settings: Settings = DEFAULTS,
    files: FileServices = FILES,
) -> Services:
    if evolution is None:
        evolution = runtime.evolution_deps(settings, engine or runtime.agent_engine(settings, db, secrets=secrets))
    # the MCP servers of the engine's tool executor (the routes and the agent loop share one pool), or,
    # for an engine that runs no tools, the defaults'
    mcp = getattr(evolution.engine.tools, "mcp", None) or runtime.mcp_servers(settings, db, secrets)
    # upload sessions' and exports' jobs run on a thread each, as in a local server
    transfers = TransferServices(BLOBS, announce=launch(Jobs(db, BLOBS)))
    return Services(evolution, sandbox or runtime.sandbox(settings), secrets, files=files, mcp=mcp, transfers=transfers)


def app(
    db: Database,
    *,
    engine: Engine | None = None,
    evolution: EvolutionDeps | None = None,
    sandbox: Sandbox | None = None,
    secrets: SecretBox = SECRETS,
    max_body_bytes: int = 1_048_576,
    settings: Settings = DEFAULTS,
    files: FileServices = FILES,
) -> FastAPI:
    parts = services(
        db, engine=engine, evolution=evolution, sandbox=sandbox, secrets=secrets, settings=settings, files=files
    )
    return create_app(parts, max_body_bytes=max_body_bytes)
