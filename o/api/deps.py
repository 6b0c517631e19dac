"""Request dependencies: the services the composition root built, and the caller's organization
(from the bearer key)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from o.agent.engine import Engine
from o.errors import Unauthorized
from o.evolution.loop import EvolutionDeps
from o.memory.embeddings import EmbedderSource
from o.store import orgs
from o.store.db import Database
from o.tools.sandbox.base import Sandbox

_bearer = HTTPBearer(auto_error=False, description="An O API key: `o keys create` prints one")


@dataclass(frozen=True)
class Services:
    """What the routes call, built once per process by the composition root (:mod:`o.runtime`)."""

    # the evolution's dependencies hold the database and the agent engine the API shares with it
    evolution: EvolutionDeps
    # where POST /v1/tools/run runs a tool (a local process jail, or the sandbox Lambda)
    sandbox: Sandbox

    @property
    def db(self) -> Database:
        return self.evolution.db

    @property
    def engine(self) -> Engine:
        return self.evolution.engine


# The dependencies are coroutines: FastAPI runs a plain ``def`` dependency on the thread pool, a hop
# per dependency per request; these do no blocking work except the key lookup on a cache miss.
async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_engine(request: Request) -> Engine:
    services: Services = request.app.state.services
    return services.engine


async def get_evolution(request: Request) -> EvolutionDeps:
    services: Services = request.app.state.services
    return services.evolution


async def get_sandbox(request: Request) -> Sandbox:
    services: Services = request.app.state.services
    return services.sandbox


async def get_embedders(request: Request) -> EmbedderSource:
    services: Services = request.app.state.services
    return services.engine.embedders


class KeyCache:
    """Remembers key → organization for a short time so most requests skip the lookup.

    A revoked key stops working within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, secret: str) -> str | None:
        hit = self._entries.get(secret)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, secret: str, organization_id: str) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[secret] = (organization_id, time.monotonic() + self.ttl)


def _lookup_key(db: Database, secret: str) -> str | None:
    with db.transaction() as conn:
        return orgs.organization_for_key(conn, secret)


async def current_org(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    cache: KeyCache = request.app.state.key_cache
    secret = credentials.credentials
    org_id = cache.get(secret)
    if org_id is None:
        org_id = await run_in_threadpool(_lookup_key, request.app.state.db, secret)
        if org_id is None:
            raise Unauthorized("invalid or revoked API key")
        cache.put(secret, org_id)
    return org_id


Org = Annotated[str, Depends(current_org)]
Db = Annotated[Database, Depends(get_db)]
AgentEngine = Annotated[Engine, Depends(get_engine)]
Evolution = Annotated[EvolutionDeps, Depends(get_evolution)]
ToolSandbox = Annotated[Sandbox, Depends(get_sandbox)]
Embeddings = Annotated[EmbedderSource, Depends(get_embedders)]
