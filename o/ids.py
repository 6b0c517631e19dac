"""Letta-style ids: ``<prefix>-<uuid4>``."""

from __future__ import annotations

import uuid

PREFIXES = (
    "org",
    "key",
    "agent",
    "block",
    "message",
    "passage",
    "tool",
    "run",
    "step",
    "revision",
    "evolution",
    "archive",
    "mcp_server",
)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def is_id(value: str, prefix: str) -> bool:
    head, sep, tail = value.partition("-")
    if head != prefix or not sep:
        return False
    try:
        uuid.UUID(tail)
    except ValueError:
        return False
    return True
