"""Identities: /v1/identities/ (list, create, upsert), /v1/identities/{id} (get, update, delete), its
properties (PUT), and attaching one to an agent: /v1/agents/{agent_id}/identities/attach|detach/{id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status

from o.agent import identities
from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging
from o.api.schemas.identities import Identity, IdentityCreate, IdentityProperty, IdentityUpdate, identity_object
from o.store.pages import Page

router = APIRouter(prefix="/v1/identities", tags=["identities"], responses=errors.responses(401))
agents_router = APIRouter(prefix="/v1/agents", tags=["identities"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
WRITE = errors.responses(400, 404, 409)


@router.get("/", response_model=list[Identity], responses=errors.responses(400))
def list_identities(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=50, default_order="desc"))],
    name: str | None = None,
    identifier_key: str | None = None,
    identity_type: str | None = None,
    project_id: str | None = None,
) -> Any:
    with db.transaction() as conn:
        rows = identities.list_identities(
            conn,
            org,
            page=page,
            name=name,
            identifier_key=identifier_key,
            identity_type=identity_type,
            project_id=project_id,
        )
    return [identity_object(r) for r in rows]


@router.post("/", response_model=Identity, responses=WRITE)
def create_identity(body: IdentityCreate, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        row = identities.create(conn, org, body.model_dump(mode="json"))
    return identity_object(row)


@router.put("/", response_model=Identity, responses=WRITE)
def upsert_identity(body: IdentityCreate, org: Org, db: Db) -> Any:
    """Create the identity with this ``identifier_key``, or replace the one that has it."""
    with db.transaction() as conn:
        row = identities.upsert(conn, org, body.model_dump(mode="json"))
    return identity_object(row)


@router.get("/{identity_id}", response_model=Identity, responses=NOT_FOUND)
def get_identity(identity_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        row = identities.require(conn, org, identity_id)
    return identity_object(row)


@router.patch("/{identity_id}", response_model=Identity, responses=WRITE)
def update_identity(identity_id: str, body: IdentityUpdate, org: Org, db: Db) -> Any:
    changes = body.model_dump(mode="json", exclude_unset=True)
    for required in ("identifier_key", "name", "identity_type"):
        if required in changes and changes[required] is None:
            changes.pop(required)
    with db.transaction() as conn:
        row = identities.update(conn, org, identity_id, changes)
    return identity_object(row)


@router.put("/{identity_id}/properties", responses=WRITE)
def upsert_properties(
    identity_id: str, org: Org, db: Db, body: Annotated[list[IdentityProperty], Body(max_length=100)]
) -> Any:
    with db.transaction() as conn:
        identities.upsert_properties(conn, org, identity_id, [p.model_dump(mode="json") for p in body])
    return {}


@router.delete("/{identity_id}", status_code=status.HTTP_200_OK, responses=NOT_FOUND)
def delete_identity(identity_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        identities.delete(conn, org, identity_id)
    return {}


@agents_router.patch("/{agent_id}/identities/attach/{identity_id}", responses=errors.responses(404, 409))
def attach_identity(agent_id: str, identity_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        identities.attach(conn, org, agent_id, identity_id)
    return {}


@agents_router.patch("/{agent_id}/identities/detach/{identity_id}", responses=NOT_FOUND)
def detach_identity(agent_id: str, identity_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        identities.detach(conn, org, agent_id, identity_id)
    return {}
