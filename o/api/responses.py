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


def models_json(models: Sequence[BaseModel], status_code: int = 200) -> Response:
    """A list of models as one JSON array, each serialized by its own schema's serializer, once."""
    return JSONBytes(pydantic_core.to_json(list(models), by_alias=True), status_code=status_code)


def json_of(value: Any, status_code: int = 200) -> Response:
    """Plain data (dicts, lists, str, numbers, datetimes) as JSON."""
    return JSONBytes(pydantic_core.to_json(value), status_code=status_code)
