"""The hot path: the four operations a Letta client repeats most (GET an agent, list agents, list an
agent's messages, set a core-memory block's value), answered without FastAPI's per-request machinery.

Under load FastAPI spent three quarters of a GET agent's CPU around the endpoint rather than in it
(matching the path across routers, solving the dependencies, its middlewares and telemetry; see the
README's performance section). This pure ASGI app, in front of the FastAPI app's middleware stack
(o.api.app.App), recognizes the plainest form of those requests (a known API key, no query parameter
but the page's, a JSON body holding just a string ``value``) and calls the very same route functions
with the arguments FastAPI would have given them, on one trip to a thread (o/api/hop.py). Everything
else, and every request whose answer is not a 200 (an unknown key, a missing agent, a cursor that names
nothing, a value over its limit), goes to the FastAPI app, which is the one authority on validation and
error shapes: the hot path only ever answers what the full path would have answered, byte for byte. The
one error it answers itself is the database's 503 (restarting, failing over), which the app would answer
too, after making the client wait for the database a second time.

The key's check rides on the route's first statement here (o/store/keyed.py): one round trip per request.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from o.api import storable
from o.api.errors import domain_response
from o.api.hop import ThreadHop
from o.api.limits import replaying
from o.api.paging import MAX_LIMIT
from o.api.schemas.blocks import UpdateBlock
from o.errors import OError
from o.store.db import Database, DatabaseUnavailable, borrow_check
from o.store.errors import CheckViolation, DataError, NotNullViolation, UniqueViolation
from o.store.keyed import KeyCheck
from o.store.orgs import hash_key
from o.store.pages import Page

# what the hot list routes take from the query string (anything else goes to FastAPI)
_PAGE_PARAMS = frozenset({"limit", "before", "after", "order"})
_SEGMENT = "(?P<{}>[^/\x00]+)"


@dataclass(frozen=True)
class _Call:
    """A request the hot path answers: the route function and its arguments but the database."""

    run: Callable[..., Response]
    args: dict[str, Any]


def _page(query: dict[str, str], default_limit: int, default_order: str) -> Page | None:
    """The Page FastAPI's paging dependency would give, or None when the query is not that plain."""
    limit = query.get("limit", str(default_limit))
    order = query.get("order", default_order)
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT or order not in ("asc", "desc"):
        return None
    return Page(before=query.get("before"), after=query.get("after"), limit=int(limit), order=order)  # type: ignore[arg-type]


# The route modules are imported by the first request that needs them, not with this module: a key's
# first request goes through the app anyway, and an API Lambda's cold start imports only the routers
# that request needs (o.api.routers).


def _get_agent(match: dict[str, str], query: dict[str, str], body: bytes) -> _Call | None:
    from o.api.routers import agents

    return None if query else _Call(agents.get_agent, {"agent_id": match["agent"]})


def _list_agents(match: dict[str, str], query: dict[str, str], body: bytes) -> _Call | None:
    page = _page(query, 50, "desc")
    if page is None:
        return None
    from o.api.routers import agents

    filters = dict.fromkeys(("name", "tags", "query_text", "identity_id", "identifier_keys"))
    return _Call(agents.list_agents, {"page": page, "match_all_tags": False, **filters})


def _list_messages(match: dict[str, str], query: dict[str, str], body: bytes) -> _Call | None:
    page = _page(query, 100, "desc")
    if page is None:
        return None
    from o.api.routers import messages

    args = {"agent_id": match["agent"], "page": page, "use_assistant_message": True, "conversation_id": None}
    return _Call(messages.list_messages, args)


def _set_block_value(match: dict[str, str], query: dict[str, str], body: bytes) -> _Call | None:
    if query or storable.in_body(body):
        return None
    try:
        update = UpdateBlock.model_validate_json(body)
    except ValidationError:
        return None
    if update.model_fields_set != {"value"} or update.value is None:
        return None
    from o.api.routers import core_memory

    args = {"agent_id": match["agent"], "block_label": match["label"], "body": update}
    return _Call(core_memory.update_agent_block, args)


Parse = Callable[[dict[str, str], dict[str, str], bytes], "_Call | None"]
_ROUTES: list[tuple[str, re.Pattern[str], Parse]] = [
    ("GET", re.compile("^/v1/agents/?$"), _list_agents),
    ("GET", re.compile("^/v1/agents/{}/?$".format(_SEGMENT.format("agent"))), _get_agent),
    ("GET", re.compile("^/v1/agents/{}/messages/?$".format(_SEGMENT.format("agent"))), _list_messages),
    (
        "PATCH",
        re.compile(
            "^/v1/agents/{}/core-memory/blocks/{}/?$".format(_SEGMENT.format("agent"), _SEGMENT.format("label"))
        ),
        _set_block_value,
    ),
]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, secret = get_authorization_scheme_param(value.decode("latin-1"))  # as HTTPBearer reads it
            return secret if scheme.lower() == "bearer" and secret else None
    return None


def _query(scope: Scope) -> dict[str, str] | None:
    """The query's parameters, or None when one repeats, holds a NUL or is not a page parameter."""
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or not set(query) <= _PAGE_PARAMS:
        return None
    if any(storable.NUL in value for value in query.values()):
        return None
    return query


class HotPath:
    """Pure ASGI, in front of the FastAPI app's middleware stack (o.api.app.App; both `o serve` and the
    API Lambda): what it does not answer goes to ``app``, the whole stack.

    In front rather than among the app's middlewares: Starlette's outer ones (its error middleware and
    its wrapper of every ``send``, FastAPI's telemetry check, the body limit's path matching) were
    another tenth of a hot request's CPU (py-spy). What they do for a hot request is done here: the body
    limit (a larger PATCH body goes to the app, which refuses it) and the app's answer to an unexpected
    error (its 500, then the error raised to the server, as Starlette's ServerErrorMiddleware does).
    FastAPI's own OpenTelemetry instrumentation, which O does not configure, does not see hot requests."""

    def __init__(
        self,
        app: ASGIApp,
        db: Database,
        known_keys: dict[str, str],
        *,
        max_body_bytes: int,
        unexpected: Callable[[Request, Any], Response | Awaitable[Response]],
        owner: ASGIApp,
    ) -> None:
        self.app = app
        self.db = db
        self.known_keys = known_keys
        self.max_body_bytes = max_body_bytes
        # the app's handler of any other exception, and the app its Request names (request.app)
        self.unexpected = unexpected
        self.owner = owner
        # At most as many threads as the database pool has connections: the requests beyond wait in the
        # hop's queue, not in threads handing connections to each other (8% of a GET's CPU). And no more
        # than _THREADS: the threads beyond wait for the GIL rather than for Postgres, and a request's
        # answer waits behind them (o/api/hop.py says why not an executor).
        self.threads = ThreadHop(min(db.max_size, _THREADS), "o-hot")
        # when this process last checked each key by itself, by the key's hash
        self.noted: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope)
        secret = _bearer(scope) if found else None
        if found is None or secret is None:
            await self.app(scope, receive, send)
            return
        try:
            response, receive = await self._answer(scope, receive, found, secret)
        except Exception as exc:
            await self._unexpected(scope, receive, send, exc)
            raise
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    async def _unexpected(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        scope["app"] = self.owner  # as the app's stack sets it, for the handler's request.app
        answer = self.unexpected(Request(scope), exc)
        await (await answer if inspect.isawaitable(answer) else answer)(scope, receive, send)

    async def _answer(
        self, scope: Scope, receive: Receive, found: tuple[str, dict[str, str], Parse], secret: str
    ) -> tuple[Response | None, Receive]:
        """The hot path's answer (None: the app's), and the ``receive`` that gives the app the request's body."""
        method, match, parse = found
        body = b""
        if method == "PATCH":
            if not _json(scope) or not _declared_within(scope, self.max_body_bytes):
                return None, receive
            body, receive = await _read_body(receive, self.max_body_bytes)
            if len(body) > self.max_body_bytes:  # chunked, and over: the app says so
                return None, receive
        query = _query(scope)
        call = parse(match, query, body) if query is not None else None
        key_hash = hash_key(secret)
        org = self.known_keys.get(key_hash)  # a hint, which the key's check verifies
        if call is None or org is None:
            return None, receive
        check = KeyCheck(secret, org, in_statement=self._noted_lately(key_hash), key_hash=key_hash)
        return await self.threads.run(_run, call, check, self.db), receive

    def _noted_lately(self, key_hash: str) -> bool:
        """Whether this process checked the key by itself lately, which notes its use (its ``last_used_at``,
        at most once a minute): then its check rides on the route's statement (o.store.keyed), which
        notes nothing; otherwise it is checked by itself, and noted, once more."""
        now = time.monotonic()
        if now - self.noted.get(key_hash, -_NOTE_EVERY_S) < _NOTE_EVERY_S:
            return True
        if len(self.noted) >= _NOTED_MAX:
            self.noted.clear()
        self.noted[key_hash] = now
        return False

    def _route(self, scope: Scope) -> tuple[str, dict[str, str], Parse] | None:
        if scope["type"] != "http":
            return None
        found = hot_route(scope["method"], scope["path"])
        return None if found is None else (scope["method"], *found)


def hot_route(method: str, path: str) -> tuple[dict[str, str], Parse] | None:
    """The path's parameters and the parser of the hot route that answers it, if one does (a route the
    app adds where one of these paths could match is caught by tests/integration/api/test_hot_path.py)."""
    for hot_method, pattern, parse in _ROUTES:
        matched = pattern.match(path) if method == hot_method else None
        if matched:
            return matched.groupdict(), parse
    return None


# Under bench/floor.py's load (16 connections, one worker, 2 cores), 10 threads (the pool's size) made GET
# agent's and GET messages' p99 3-5x what 4 did at the same CPU per request and req/s; 3 or fewer start to
# leave the process waiting for Postgres.
_THREADS = 4

# how often a key's use is noted at least (o.store.orgs.organization_for_key notes it at most once a minute)
_NOTE_EVERY_S = 30.0
_NOTED_MAX = 10_000

# what the full app's error handlers turn into a 4xx/503 (o/api/errors.py); anything else is a bug,
# and a 500 either way
_ANSWERED_BY_THE_APP = (OError, DataError, CheckViolation, NotNullViolation, UniqueViolation)


def _run(call: _Call, check: KeyCheck, db: Database) -> Response | None:
    """The route's 200 (or the database's 503), or None for anything else: the full app then answers (and
    says what was wrong).
    Runs on the thread pool, in a copy of the request's context: the key's check, set here, is in (or
    before) the first statement on the route's connection and never outlives this call."""
    borrow_check.set(check)
    try:
        response = call.run(org=check.organization_id, db=db, **call.args)
    except DatabaseUnavailable as exc:
        # the app's answer too, but only after waiting for the database once more: the client waits once
        return domain_response(exc)
    except _ANSWERED_BY_THE_APP:
        return None
    return response if response.status_code == 200 else None


def _json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


def _declared_within(scope: Scope, limit: int) -> bool:
    """Whether the body's declared length (if it declares one) is within the limit."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) <= limit
    return True


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """The whole body, or its first part beyond ``limit`` bytes (the app's body limit refuses it), and
    a ``receive`` that gives it again to the full app if the hot path passes the request on."""
    chunks = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, replaying(body, receive)
