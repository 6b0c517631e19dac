"""Identities in Letta's shapes: ``Identity``, ``IdentityProperty`` and the create/update/upsert bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

IdentityType = Literal["org", "user", "other"]
Key = Annotated[str, Field(min_length=1, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=500)]
Id = Annotated[str, Field(min_length=1, max_length=100)]


class IdentityProperty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    type: Literal["string", "number", "boolean", "json"]
    # bool before float: JSON true must stay a boolean
    value: bool | float | Annotated[str, Field(max_length=10_000)] | dict[str, Any]


Properties = Annotated[list[IdentityProperty], Field(max_length=100)]


class IdentityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier_key: Key
    name: Name
    identity_type: IdentityType
    project_id: Id | None = None
    properties: Properties | None = None
    agent_ids: Annotated[list[Id], Field(max_length=1000)] | None = None
    block_ids: Annotated[list[Id], Field(max_length=1000)] | None = None


class IdentityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier_key: Key | None = None
    name: Name | None = None
    identity_type: IdentityType | None = None
    properties: Properties | None = None
    agent_ids: Annotated[list[Id], Field(max_length=1000)] | None = None
    block_ids: Annotated[list[Id], Field(max_length=1000)] | None = None


class Identity(BaseModel):
    id: str
    identifier_key: str
    name: str
    identity_type: IdentityType
    project_id: str | None = None
    properties: list[IdentityProperty]
    agent_ids: list[str]
    block_ids: list[str]


def identity_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "identifier_key": row["identifier_key"],
        "name": row["name"],
        "identity_type": row["identity_type"],
        "project_id": row["project_id"],
        "properties": row["properties"],
        "agent_ids": list(row["agent_ids"]),
        "block_ids": list(row["block_ids"]),
    }
