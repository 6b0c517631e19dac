"""Every error leaves the API as JSON that says what was wrong, in the one shape the OpenAPI
document declares for every error status (:class:`ErrorBody`).

``detail`` is a sentence, as Letta's own errors are (``{"detail": "Agent not found"}``), so a
client that prints it reads the cause; letta-client's errors keep the body whole without reading
it. A malformed request (422) also lists each problem in ``errors`` with the field's place
(``loc``), the triple FastAPI's own validation body carries.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from o.errors import OError
from o.store.db import Database, borrow_check
from o.store.errors import CheckViolation, DataError, NotNullViolation, UniqueViolation
from o.store.keyed import KeyCheck


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where: 'body', 'query', 'path' or 'header', then the field's path")
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str = Field(description="what was wrong, in a sentence")
    code: str = Field(description="a stable name for the kind of error, e.g. not_found, invalid_request")
    errors: list[ValidationIssue] | None = Field(default=None, description="each problem of a malformed request")
    context: dict[str, Any] | None = Field(default=None, description="facts about the error (ids, limits)")


_MEANING = {
    400: "The body could not be read (it is not UTF-8)",
    401: "No API key, or one that is invalid or revoked",
    404: "A thing the request names does not exist (or belongs to another organization)",
    409: "The request conflicts with the current state (a name in use, a run or evolution in progress)",
    413: "The request body is larger than the limit",
    415: "The uploaded file's type is not one O can index; `supported` lists those it can",
    422: "The request is malformed or a value is not acceptable; `errors` names each field",
    502: "A provider O called on the request's behalf (an LLM or embedding endpoint, an MCP server) failed",
    503: "The service cannot answer now (e.g. its database is restarting); retry after `Retry-After` seconds",
    504: "The work goes on past the request's wait; follow the run it names",
}


# A route that answers with Server-Sent Events. The schema is one event's (as OpenAPI 3.2 describes
# a stream): its ``data`` is a JSON object (a Letta message, stop reason or usage), the last ``[DONE]``.
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Successful Response; a stream is Server-Sent Events, one JSON object per `data:` line",
        "content": {
            "text/event-stream": {
                "schema": {"type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"]}
            }
        },
    }
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` for these error statuses, each with :class:`ErrorBody`."""
    return {
        status: {"model": ErrorBody, "description": _MEANING[status], **_HEADERS.get(status, {})} for status in statuses
    }


_HEADERS: dict[int, dict[str, Any]] = {
    401: {"headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}},
    503: {"headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}},
}


def _body(status: int, code: str, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content=jsonable_encoder({"detail": detail, "code": code, **extra}))


def issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each problem as ``loc`` / ``msg`` / ``type``; a JSON syntax error says what the parser found."""
    found = []
    for error in exc.errors():
        message = str(error.get("msg"))
        reason = (error.get("ctx") or {}).get("error")
        if error.get("type") == "json_invalid" and reason:
            message = f"{message}: {reason}"
        found.append({"loc": list(error.get("loc", ())), "msg": message, "type": error.get("type")})
    return found


def summary(problems: list[dict[str, Any]]) -> str:
    return "invalid request: " + "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problems)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _headers(exc: OError) -> dict[str, str]:
    if exc.status_code == 401:
        return {"WWW-Authenticate": "Bearer"}
    if exc.status_code == 503:
        # e.g. the database is restarting: a client that honours it retries instead of giving up
        return {"Retry-After": str(getattr(exc, "retry_after_s", 1))}
    return {}


async def _with_known_models(request: Request, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A model handle that was refused (no provider prefix, an unknown provider), told with the handles this
    server lists (GET /v1/models/), so the fix is in the answer."""
    catalog = getattr(getattr(request.app.state, "services", None), "models", None)
    if catalog is None:
        return problems
    handles = [entry.handle for entry in await run_in_threadpool(catalog.models, "llm")]
    known = "; this server's models: " + (", ".join(handles) if handles else "none (no provider is configured)")
    return [{**p, "msg": p["msg"] + known} if p["loc"][-1:] == ["model"] else p for p in problems]


def domain_response(exc: OError) -> JSONResponse:
    """The answer to a domain error (also the hot path's, o/api/hot.py, for the one it answers itself)."""
    response = _body(exc.status_code, exc.code, exc.message, **({"context": exc.details} if exc.details else {}))
    response.headers.update(_headers(exc))
    return response


def _verify_key(db: Database) -> None:
    with db.read():  # borrowing runs the request's pending key check (o.store.db.borrow_check)
        pass


async def _key_refused(request: Request) -> OError | None:
    """The refusal of a request's key whose check was left to the first connection the request borrows
    (o.api.deps.org_checked_on_borrow) when the request is refused as malformed before it borrows one: the
    key is checked first, so a revoked key is told 401 on every request, not what was wrong with it."""
    check = borrow_check.get()
    if not isinstance(check, KeyCheck) or check.done:
        return None
    try:
        await run_in_threadpool(_verify_key, request.app.state.db)
    except OError as refused:
        return refused
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(OError)
    async def domain_error(_: Request, exc: OError) -> JSONResponse:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (refused := await _key_refused(request)) is not None:
            return domain_response(refused)
        problems = issues(exc)
        if any(p["loc"][:1] == ["body"] and p["loc"][-1:] == ["model"] for p in problems):
            problems = await _with_known_models(request, problems)
        return _body(422, "invalid_request", summary(problems), errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _body(exc.status_code, "http_error", exc.detail)

    @app.exception_handler(UniqueViolation)
    async def unique(_: Request, exc: UniqueViolation) -> JSONResponse:
        what = exc.diag.constraint_name or "a unique constraint"
        return _body(409, "conflict", f"conflicts with an existing item ({what})")

    @app.exception_handler(CheckViolation)
    async def check(_: Request, exc: CheckViolation) -> JSONResponse:
        return _body(422, "invalid_input", f"value violates {exc.diag.constraint_name or 'a check constraint'}")

    # The edge refuses what the database cannot take (NUL characters, non-finite numbers, nulls,
    # out-of-range numbers and times) with the field's name; these two are the backstop for a value
    # that reaches the database some other way, so it is still the caller's 422, not a 500.
    @app.exception_handler(NotNullViolation)
    async def not_null(_: Request, exc: NotNullViolation) -> JSONResponse:
        return _body(422, "invalid_input", f"{exc.diag.column_name or 'a field'} may not be null")

    @app.exception_handler(DataError)
    async def unstorable(_: Request, exc: DataError) -> JSONResponse:
        return _body(422, "invalid_input", f"a value cannot be stored: {_first_line(exc)}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request.app.state.logger.exception("unhandled error", extra={"path": request.url.path})
        return _body(500, "internal_error", "internal server error; nothing was partially written")
