"""JSON responses serialized once, by pydantic-core, on the thread that built the value.

An endpoint that returns a model lets FastAPI validate it against ``response_model`` again and
serialize it, on a second trip through the thread pool for a plain ``def`` endpoint. The hot
read/write paths return one of these instead; they keep ``response_model=`` in their decorator,
so the OpenAPI document still names the shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic_core
from pydantic import BaseModel
from starlette.responses import Response


class JSONBytes(Response):
    media_type = "application/json"


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    # by_alias, as FastAPI serializes a response_model
    return JSONBytes(model.model_dump_json(by_alias=True), status_code=status_code)


def json_of(value: Any, status_code: int = 200) -> Response:
    """Plain data (dicts, lists, str, numbers, datetimes) as JSON."""
    return JSONBytes(pydantic_core.to_json(value), status_code=status_code)


# Stands in a model's list of shared items while the model is serialized, then is replaced by their JSON.
# It holds a NUL, which no stored text or JSON can (Postgres refuses it, and so does O's input check),
# so its serialized form can only be this placeholder.
SHARED_PLACEHOLDER: dict[str, Any] = {"\x00": "shared"}
_PLACEHOLDER_JSON = b"[" + pydantic_core.to_json(SHARED_PLACEHOLDER) + b"]"


def spliced_json(model: BaseModel, shared: Sequence[bytes]) -> bytes:
    """The model's JSON (by alias), with its field set to ``[SHARED_PLACEHOLDER]`` holding ``shared``,
    each already-serialized item as it would have been written in place: a list of agents names the
    same few tools, each with its JSON schema, in every agent (40% of the list's CPU, serialized once
    per agent)."""
    return pydantic_core.to_json(model, by_alias=True).replace(_PLACEHOLDER_JSON, b"[" + b",".join(shared) + b"]", 1)
