"""Request dependencies: the services the composition root built, and the caller's organization
(from the bearer key)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from o.agent.file_services import FileServices, TransferServices
from o.config import default_data_dir
from o.errors import Unauthorized
from o.memory.embeddings import EmbedderSource
from o.memory.files.blobs import LocalBlobStore
from o.store import orgs
from o.store.db import Database, borrow_check
from o.store.keyed import KeyCheck
from o.tools.sandbox.base import Sandbox
from o.tools.secrets.envelope import SecretBox

if TYPE_CHECKING:
    # built on first use (Lazy below): a request that does not run agents never imports them
    from o.agent.engine import Engine
    from o.evolution.loop import EvolutionDeps
    from o.llm.catalog import ModelCatalog
    from o.tools.mcp.servers import McpServers

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="An O API key: `o keys create` prints one")


class Lazy(Generic[T]):
    """A service built on its first use, once, by whichever thread asks first. The API Lambda serves
    one request per cold start, and most requests (a GET of an agent) never run the agent engine: built
    at start-up, its imports and construction were most of O's share of the cold start."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: list[T] = []  # empty until built: T itself may be any value
        self._lock = threading.Lock()

    def get(self) -> T:
        if not self._value:
            with self._lock:
                if not self._value:
                    self._value.append(self._build())
        return self._value[0]


def _no_models() -> ModelCatalog:
    from o.llm.catalog import ModelCatalog

    return ModelCatalog(())


@dataclass(frozen=True)
class Services:
    """What the routes call, built once per process by the composition root (:mod:`o.runtime`)."""

    # the evolution's dependencies hold the database and the agent engine the API shares with it
    # (the composition root builds them on first use)
    evolution_deps: EvolutionDeps | Lazy[EvolutionDeps]
    # where POST /v1/tools/run runs a tool (a local process jail, or the sandbox Lambda)
    sandbox: Sandbox
    # what seals the agents' tool variables (the key file locally, KMS on AWS)
    secrets: SecretBox
    # the models of the operator's providers (GET /v1/models); none unless the composition root says
    # (which builds them on first use: the catalog imports the LLM clients' configuration)
    model_catalog: ModelCatalog | Lazy[ModelCatalog] = field(default_factory=lambda: Lazy(_no_models))
    # folders' files: where their bytes go (the data dir, or S3) and the upload limits
    files: FileServices = field(default_factory=lambda: FileServices(LocalBlobStore(default_data_dir() / "files")))
    # the organizations' MCP servers (/v1/mcp-servers), sharing the agent loop's pooled connections
    # (the composition root builds them on first use)
    mcp: McpServers | Lazy[McpServers] | None = None
    # upload sessions and exports (/v1/uploads, /v1/exports): the blob store and how their jobs run
    transfers: TransferServices = field(
        default_factory=lambda: TransferServices(LocalBlobStore(default_data_dir() / "files"))
    )

    # the database, when the evolution's dependencies are built on first use
    database: Database | None = None

    @property
    def evolution(self) -> EvolutionDeps:
        deps = self.evolution_deps
        return deps.get() if isinstance(deps, Lazy) else deps

    @property
    def models(self) -> ModelCatalog:
        catalog = self.model_catalog
        return catalog.get() if isinstance(catalog, Lazy) else catalog

    @property
    def mcp_servers(self) -> McpServers | None:
        mcp = self.mcp
        return mcp.get() if isinstance(mcp, Lazy) else mcp

    @property
    def db(self) -> Database:
        return self.database if self.database is not None else self.evolution.db

    @property
    def engine(self) -> Engine:
        return self.evolution.engine


# The dependencies are coroutines: FastAPI runs a plain ``def`` dependency on the thread pool, a hop
# per dependency per request; these do no blocking work except the key lookup, which hops explicitly.
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


async def get_secrets(request: Request) -> SecretBox:
    services: Services = request.app.state.services
    return services.secrets


async def get_embedders(request: Request) -> EmbedderSource:
    services: Services = request.app.state.services
    return services.engine.embedders


def _authenticate(db: Database, secret: str) -> str | None:
    # autocommit: the statement is its own transaction, so a key revoked by a committed
    # `o keys revoke` is refused by the very next request, in every process and on Lambda
    with db.read() as conn:
        return orgs.organization_for_key(conn, secret)


async def current_org(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's organization, looked up on every request (no cache: nothing to invalidate, and the
    indexed lookup is one round trip on a pooled connection)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    org_id = await run_in_threadpool(_authenticate, request.app.state.db, credentials.credentials)
    if org_id is None:
        raise Unauthorized("invalid or revoked API key")
    return org_id


# organizations of keys seen by this process, by the key's hash; only ever a hint that a KeyCheck verifies
_KNOWN_KEYS_MAX = 10_000


async def org_checked_on_borrow(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """:func:`current_org` for a route that borrows a database connection before it answers anything:
    a known key costs no separate lookup (no thread hop, no second connection); its check runs as the
    first statement on the route's own connection (:data:`o.store.db.borrow_check`), or, when FastAPI
    refuses the request as malformed before the route borrows one, before that refusal (o/api/errors.py)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    secret = credentials.credentials
    known: dict[str, str] = request.app.state.known_keys
    key_hash = orgs.hash_key(secret)
    org_id = known.get(key_hash)  # a hint, which the check verifies
    if org_id is not None:
        check_on_borrow(secret, org_id, key_hash)
        return org_id
    org_id = await run_in_threadpool(_authenticate, request.app.state.db, secret)
    if org_id is None:
        raise Unauthorized("invalid or revoked API key")
    if len(known) >= _KNOWN_KEYS_MAX:
        known.clear()
    known[key_hash] = org_id
    return org_id


def check_on_borrow(secret: str, org_id: str, key_hash: str) -> None:
    """Check the key on the first connection the request borrows (set in the caller's context)."""
    borrow_check.set(KeyCheck(secret, org_id, key_hash=key_hash))


Org = Annotated[str, Depends(current_org)]
# the caller's organization, for routes whose first act is to borrow a connection (see org_checked_on_borrow)
DbOrg = Annotated[str, Depends(org_checked_on_borrow)]
Db = Annotated[Database, Depends(get_db)]
if TYPE_CHECKING:
    AgentEngine = Annotated[Engine, Depends(get_engine)]
    Evolution = Annotated[EvolutionDeps, Depends(get_evolution)]
else:  # FastAPI reads only the dependency: the classes are imported when a route first needs them
    AgentEngine = Annotated[Any, Depends(get_engine)]
    Evolution = Annotated[Any, Depends(get_evolution)]
ToolSandbox = Annotated[Sandbox, Depends(get_sandbox)]
Embeddings = Annotated[EmbedderSource, Depends(get_embedders)]
Secrets = Annotated[SecretBox, Depends(get_secrets)]
AppServices = Annotated[Services, Depends(get_services)]
