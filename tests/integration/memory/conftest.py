"""Organizations and agents for the memory tests, written straight to the real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from o.ids import new_id
from o.store import orgs
from o.store.db import Database
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)

AgentFactory = Callable[..., str]


def create_org(db: Database) -> str:
    with db.transaction() as conn:
        return str(orgs.get_or_create_org(conn, f"memory-{uuid.uuid4()}")["id"])


def create_agent(db: Database, org_id: str, embedding_config: dict[str, Any] | None = None) -> str:
    agent_id = new_id("agent")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO agents (id, organization_id, name, embedding_config) VALUES (%s, %s, %s, %s)",
            (agent_id, org_id, "memory-test", Jsonb(embedding_config or {})),
        )
    return agent_id


@pytest.fixture
def org(db: Database) -> str:
    return create_org(db)


@pytest.fixture
def make_agent(db: Database, org: str) -> Iterator[AgentFactory]:
    def make(embedding_config: dict[str, Any] | None = None, org_id: str | None = None) -> str:
        return create_agent(db, org_id or org, embedding_config)

    yield make
