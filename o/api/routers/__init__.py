"""The API's routers, in the order the app tries them, and which of them a request's path needs.

Importing a router module builds its routes and their request and response models: ≈ 0.65 s of CPU
for all of them, most of an API Lambda's cold start, which then serves one request. So on Lambda the
app includes a module's routers when the first request that needs them arrives (:class:`Routes`,
``on_demand``), and `o serve` includes them all at start. Either way the routes of the modules
included are in :data:`MODULES`' order, the order a request is matched in (agent_files before agents:
``/v1/agents/import`` would otherwise read as an agent id), and whatever needs every route (OpenAPI,
the docs, a path no table names) gets every route.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

# module → its routers, in the order the app tries them
MODULES: dict[str, tuple[str, ...]] = {
    "health": ("router",),
    # before agents: its paths (/v1/agents/import) would otherwise read as agent ids
    "agent_files": ("router",),
    "agents": ("router",),
    "agent_changes": ("router",),
    "core_memory": ("router",),
    "blocks": ("router",),
    "messages": ("router", "org_router"),
    "tools": ("router",),
    "agent_tools": ("router",),
    "send": ("router",),
    "runs": ("router",),
    "archival": ("router",),
    "revisions": ("router",),
    "evolution": ("router",),
    "context": ("router",),
    "steps": ("router", "runs_router"),
    "identities": ("router", "agents_router"),
    "tags": ("router",),
    "search": ("messages_router", "passages_router"),
    "models": ("router",),
    "archives": ("router", "agents_router"),
    "folders": ("router", "agents_router"),
    "mcp_servers": ("router",),
    "conversations": ("router",),
    "uploads": ("router", "exports_router"),
}

# /v1/<resource>/… → the modules with routes under it
RESOURCES: dict[str, tuple[str, ...]] = {
    "health": ("health",),
    "blocks": ("blocks",),
    "messages": ("messages", "search"),
    "tools": ("tools",),
    "runs": ("runs", "steps"),
    "steps": ("steps",),
    "identities": ("identities",),
    "tags": ("tags",),
    "passages": ("search",),
    "models": ("models",),
    "archives": ("archives",),
    "folders": ("folders",),
    "mcp-servers": ("mcp_servers",),
    "conversations": ("conversations",),
    "uploads": ("uploads",),
    "exports": ("uploads",),
}
# /v1/agents/import and /v1/agents/import-bundle (agent_files' only one-segment routes; agents' routes of an id
# may match them too); /v1/agents/ and /v1/agents/<an id> are the agents' own: a GET of an agent never imports
# the agent files' routes (the bundle format, the agent file's schemas), nor those that change agents (their
# request models, the base tools and the tools' catalog), which any other method gets too, so that it is
# matched (or refused with a 405) as by the whole app
AGENT_FILES = ("import", "import-bundle")
AGENT_READS = frozenset({"GET", "HEAD"})
# /v1/agents/{agent_id}/<part>/… → the modules with routes under it
AGENT_PARTS: dict[str, tuple[str, ...]] = {
    "archival-memory": ("archival",),
    "archives": ("archives",),
    "bundle": ("agent_files",),
    "export": ("agent_files",),
    "context": ("context",),
    "reset-messages": ("context",),
    "summarize": ("context",),
    "core-memory": ("core_memory",),
    "evaluation": ("evolution",),
    "evolution-policy": ("evolution",),
    "evolutions": ("evolution",),
    "feedback": ("evolution",),
    "sleeptime": ("evolution",),
    "exports": ("uploads",),
    "files": ("folders",),
    "folders": ("folders",),
    "identities": ("identities",),
    "messages": ("messages", "send"),
    "recompile": ("send",),
    "revisions": ("revisions",),
    "tool-environment": ("agent_tools",),
    "tools": ("agent_tools",),
}
# paths served by routes the app has from the start (the console, the docs' scripts): no router
OWN_PATHS = ("/console", "/docs-assets")

# paths whose bodies may be larger than the app's limit (o.api.limits.BodySizeLimit), by route module
IMPORT_FILE = "/v1/agents/import"  # agent_files
IMPORT_BUNDLE = "/v1/agents/import-bundle"  # agent_files
UPLOAD = "/v1/folders/*/upload"  # folders
CONTENT = "/v1/uploads/*/content"  # uploads
SESSIONS = "/v1/uploads/"  # uploads


def modules_for(path: str, method: str) -> tuple[str, ...] | None:
    """The router modules whose routes can match a ``method`` request of ``path`` (with or without its
    trailing slash); None: every module (OpenAPI and the docs, or a path the tables do not name)."""
    if path.startswith(OWN_PATHS):
        return ()
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1":
        return None
    if parts[1] != "agents":
        return RESOURCES.get(parts[1])
    if len(parts) <= 3:
        files = ("agent_files",) if parts[2:] and parts[2] in AGENT_FILES else ()
        return (*files, "agents") if method in AGENT_READS else (*files, "agents", "agent_changes")
    return AGENT_PARTS.get(parts[3])


class Routes:
    """The app's routes by router module, included once each, in :data:`MODULES`' order."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.own: list[BaseRoute] = list(app.router.routes)  # the docs, the console, OpenAPI
        self.included: dict[str, list[BaseRoute]] = {}
        self._lock = threading.Lock()

    def include(self, modules: Iterable[str] | None = None) -> None:
        """Include these modules' routers (None: all) unless they are; safe from concurrent requests."""
        wanted = [m for m in (MODULES if modules is None else modules) if m not in self.included]
        if not wanted:
            return
        with self._lock:
            for name in wanted:
                if name in self.included:
                    continue
                module = importlib.import_module(f"{__name__}.{name}")
                before = len(self.app.router.routes)
                for attribute in MODULES[name]:
                    self.app.include_router(getattr(module, attribute))
                self.included[name] = self.app.router.routes[before:]
            # one assignment: a request matching meanwhile sees the old list or the new, never half of it
            self.app.router.routes = self.own + [r for m in MODULES if m in self.included for r in self.included[m]]

    def on_demand(self) -> None:
        """Include each module when a request first needs it: OpenAPI gets them all first."""
        generate = self.app.openapi

        def openapi() -> dict[str, object]:
            self.include()
            return generate()

        self.app.openapi = openapi  # type: ignore[method-assign]
        self.app.add_middleware(IncludeOnDemand, routes=self)


class IncludeOnDemand:
    """Pure ASGI middleware: the routers a request's path needs are included before it is matched."""

    def __init__(self, app: ASGIApp, routes: Routes) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.routes.include(modules_for(scope.get("path", ""), scope.get("method", "GET")))
        await self.app(scope, receive, send)
