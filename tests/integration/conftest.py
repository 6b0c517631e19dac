"""Fixtures for the API: an app on the real Postgres, and a client with a fresh organization."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from o.store import orgs
from o.store.db import Database
from tests import wiring


@pytest.fixture(scope="session")
def app(db: Database) -> FastAPI:
    return wiring.app(db, max_body_bytes=256 * 1024, settings=wiring.KEYED)


def new_org_key(db: Database) -> str:
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")
        _, secret = orgs.create_api_key(conn, org["id"])
    return secret


@pytest.fixture
def api_key(db: Database) -> str:
    return new_org_key(db)


@pytest.fixture
def client(app: FastAPI, api_key: str) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c
