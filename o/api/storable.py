"""Refuse, before any handler runs, what Postgres cannot store: a NUL character in any text (a
path or query parameter, a JSON string or key) and a number JSON lets Python read but Postgres
refuses (``NaN``, ``Infinity``, ``1e999``). Each is a 422 naming the field, where it would
otherwise reach the database and fail there as a 500.

The body check is one substring and one regex scan of the raw bytes; only a body that may hold one
of these is parsed a second time, to say where.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

Issue = dict[str, Any]
Loc = tuple[str | int, ...]

# How JSON spells each: an escaped NUL, the non-standard constants, an exponent past a float's range.
_SUSPECT = re.compile(rb"\\u0000|NaN|Infinity|[eE][+-]?\d{3}")
NUL = "\x00"


class _NonFinite:
    """What ``NaN`` / ``Infinity`` parse to here, so the walk can find them."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _nul(loc: Loc) -> Issue:
    return {"loc": list(loc), "msg": "must not contain a NUL character (\\u0000)", "type": "string_nul"}


def _non_finite(loc: Loc, literal: str) -> Issue:
    return {"loc": list(loc), "msg": f"must be a finite number, not {literal}", "type": "finite_number"}


def in_params(where: str, params: Iterable[tuple[str, str]]) -> list[Issue]:
    """NUL characters in path or query parameters (names and values)."""
    return [_nul((where, name)) for name, value in params if NUL in name or NUL in value]


def in_json(value: Any, loc: Loc = ("body",)) -> Iterator[Issue]:
    """NUL characters and non-finite numbers anywhere in a parsed JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield _nul((*loc, key))
            yield from in_json(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from in_json(item, (*loc, index))
    elif isinstance(value, str):
        if NUL in value:
            yield _nul(loc)
    elif isinstance(value, _NonFinite):
        yield _non_finite(loc, value.literal)
    elif isinstance(value, float) and not math.isfinite(value):
        yield _non_finite(loc, str(value))


def in_body(body: bytes) -> list[Issue]:
    """The problems of a JSON body; none for a body that is not JSON (validation reports that)."""
    if not body or not _SUSPECT.search(body):
        return []
    try:
        parsed = json.loads(body, parse_constant=_NonFinite)
    except ValueError:
        return []
    return list(in_json(parsed))


async def refuse_unstorable(request: Request) -> None:
    """The app-wide dependency: a 422 for any request that carries what cannot be stored."""
    problems = in_params("path", request.path_params.items()) + in_params("query", request.query_params.multi_items())
    # uploads (an agent file, a bundle) are streamed by their routes, never read whole here; what
    # they hold is checked as it is stored (the database's refusal of a value is a 422 too)
    if request.method in ("POST", "PUT", "PATCH") and not _upload(request):
        problems += in_body(await request.body())
    if problems:
        raise RequestValidationError(problems)


_UPLOAD_TYPES = ("multipart/form-data", "application/x-msgpack", "application/octet-stream")


def _upload(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_UPLOAD_TYPES)
