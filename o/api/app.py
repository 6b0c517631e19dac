"""The FastAPI application: the same object serves `o serve` locally and the API Lambda."""

from __future__ import annotations

from functools import partial

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from o import __version__
from o.api import console, docs, errors
from o.api.deps import Services
from o.api.hot import HotPath
from o.api.limits import BodySizeLimit
from o.api.routers import CONTENT, IMPORT_BUNDLE, IMPORT_FILE, SESSIONS, UPLOAD, Routes
from o.api.slashes import tolerate_trailing_slashes
from o.api.storable import refuse_unstorable
from o.observability import logger


class App(FastAPI):
    """FastAPI, with the hot path (o/api/hot.py) in front of its middleware stack."""

    hot: HotPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot is None:
            await super().__call__(scope, receive, send)
        else:
            await self.hot(scope, receive, send)


def create_app(
    services: Services,
    *,
    max_body_bytes: int = 1_048_576,
    max_agent_file_bytes: int = 64 * 1024 * 1024,
    max_bundle_bytes: int = 4 * 1024**3,
    routes_on_demand: bool = False,
) -> FastAPI:
    """The app, with every route; ``routes_on_demand`` (a Lambda, which serves one request after its
    cold start): each router module is imported and included when a request first needs it
    (:mod:`o.api.routers`)."""
    app = App(
        title="O",
        version=__version__,
        description="A self-evolving, stateful agent service that speaks Letta's v1 REST API.",
        # Any request may carry what Postgres cannot store, or a body over the limit, or meet a
        # database that is restarting (503).
        dependencies=[Depends(refuse_unstorable)],
        responses=errors.responses(413, 422, 503),
        docs_url=None,  # served offline by o/api/docs.py
        redoc_url=None,
    )
    app.state.services = services
    app.state.db = services.db
    app.state.logger = logger
    app.state.known_keys = {}  # API keys' organizations: see o.api.deps.org_checked_on_borrow
    errors.install(app)
    docs.install(app)
    console.install(app)
    tolerate_trailing_slashes(app.router)
    routes = app.state.routes = Routes(app)
    if not routes_on_demand:
        routes.include()
    app.add_middleware(
        BodySizeLimit,
        max_bytes=max_body_bytes,
        uploads={
            IMPORT_FILE: max_agent_file_bytes,
            IMPORT_BUNDLE: max_bundle_bytes,
            # the multipart envelope around the file: the route refuses a file over the limit itself
            UPLOAD: services.files.limits.max_upload_bytes + 65_536,
            # O's own upload target: the route refuses more than the session declared
            CONTENT: max(services.transfers.limits.max_bundle_bytes, services.transfers.limits.max_file_bytes),
        },
        larger=SESSIONS,
    )
    if routes_on_demand:
        routes.on_demand()  # outermost: the routers are there before anything below matches a path
    app.hot = HotPath(
        partial(FastAPI.__call__, app),  # what it does not answer: the whole app
        services.db,
        app.state.known_keys,
        max_body_bytes=max_body_bytes,
        unexpected=app.exception_handlers[Exception],
        owner=app,
    )
    return app
