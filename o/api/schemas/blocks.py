"""Letta's Block shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from o.api.schemas.common import Request, Response, not_null


class CreateBlock(Request):
    label: str = Field(min_length=1, max_length=200)
    value: str
    limit: int = Field(default=20_000, ge=1, le=1_000_000)
    description: str | None = None
    read_only: bool = False
    is_template: bool = False
    template_name: str | None = None
    metadata: dict[str, Any] | None = None
    # Accepted for compatibility with Letta clients; O has no projects or deployments.
    project_id: str | None = None
    hidden: bool | None = None
    tags: list[str] | None = None


class UpdateBlock(Request):
    """The fields to change; those whose column always has a value may be left out, not set to null."""

    value: str | SkipJsonSchema[None] = None
    limit: int | SkipJsonSchema[None] = Field(default=None, ge=1, le=1_000_000)
    label: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    read_only: bool | SkipJsonSchema[None] = None
    is_template: bool | SkipJsonSchema[None] = None
    template_name: str | None = None
    metadata: dict[str, Any] | SkipJsonSchema[None] = None
    project_id: str | None = None
    hidden: bool | None = None
    tags: list[str] | None = None

    _given_not_null = field_validator("value", "limit", "label", "read_only", "is_template", "metadata", mode="before")(
        not_null
    )


class Block(Response):
    id: str
    label: str
    value: str
    limit: int
    description: str | None = None
    read_only: bool = False
    is_template: bool = False
    template_name: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Block:
        return cls(
            id=row["id"],
            label=row["label"],
            value=row["value"],
            limit=row["char_limit"],
            description=row["description"],
            read_only=row["read_only"],
            is_template=row["is_template"],
            template_name=row["template_name"],
            metadata=row["metadata"] or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


BLOCK_COLUMNS = {"value", "limit", "label", "description", "read_only", "is_template", "template_name", "metadata"}


def block_changes(body: UpdateBlock) -> dict[str, Any]:
    """The fields the caller set, limited to what O stores."""
    return {k: v for k, v in body.model_dump(exclude_unset=True).items() if k in BLOCK_COLUMNS}
