"""Base classes for request bodies (unknown fields are errors, not silently dropped) and the types
that keep a request's values within what Postgres stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

# Postgres' integer and bigint: a number compared with or stored in such a column must fit it.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")


def in_utc(value: datetime) -> datetime:
    """An aware time as UTC: Postgres refuses offsets past ±15:59, which ISO 8601 allows. A naive
    time is left as it is."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


# A point in time a request gives (stored, or compared with stored times).
Timestamp = Annotated[datetime, AfterValidator(in_utc)]


def not_null(value: Any) -> Any:
    """For a field that may be left out but, when given, must have a value: its column is NOT NULL."""
    if value is None:
        raise ValueError("may be left out, but not null")
    return value
