"""Evolution fixtures: the scripted world on an OpenAI-wire server, and evolution deps on the real Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from o.evolution.loop import EvolutionDeps
from o.store.db import Database
from tests.integration.evolution.task import World, make_deps
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def server(world: World) -> Iterator[OpenAIServer]:
    with OpenAIServer(Script(default=world)) as s:
        yield s


@pytest.fixture
def deps(db: Database) -> EvolutionDeps:
    return make_deps(db)
