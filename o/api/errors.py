"""Every error leaves the API as JSON that says what was wrong."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from o.errors import OError
from o.store.errors import CheckViolation, UniqueViolation


def _body(status: int, code: str, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content=jsonable_encoder({"detail": detail, "code": code, **extra}))


def _headers(exc: OError) -> dict[str, str]:
    if exc.status_code == 401:
        return {"WWW-Authenticate": "Bearer"}
    if exc.status_code == 503:
        # e.g. the database is restarting: a client that honours it retries instead of giving up
        return {"Retry-After": str(getattr(exc, "retry_after_s", 1))}
    return {}


def install(app: FastAPI) -> None:
    @app.exception_handler(OError)
    async def domain_error(_: Request, exc: OError) -> JSONResponse:
        response = _body(exc.status_code, exc.code, exc.message, **({"context": exc.details} if exc.details else {}))
        response.headers.update(_headers(exc))
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return _body(422, "invalid_request", f"invalid request: {summary}", errors=errors)

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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request.app.state.logger.exception("unhandled error", extra={"path": request.url.path})
        return _body(500, "internal_error", "internal server error; nothing was partially written")
