"""The paging dependency and in-memory pages, without a database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from o.api.paging import paging, slice_page
from o.errors import InvalidInput
from o.store.pages import Page

ITEMS = [{"id": f"i{n}"} for n in range(5)]


def ids(items: list[dict[str, str]]) -> list[str]:
    return [i["id"] for i in items]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (Page(limit=2), ["i0", "i1"]),
        (Page(limit=2, order="desc"), ["i4", "i3"]),
        (Page(after="i1", limit=2), ["i2", "i3"]),
        (Page(after="i4"), []),  # an SDK iterator stops at the empty page
        (Page(before="i3", limit=2), ["i1", "i2"]),  # the items nearest the cursor
        (Page(after="i0", before="i4", limit=10), ["i1", "i2", "i3"]),
        (Page(after="i3", limit=10, order="desc"), ["i2", "i1", "i0"]),
    ],
)
def test_slice_page(page: Page, expected: list[str]) -> None:
    assert ids(slice_page(ITEMS, page)) == expected


def test_a_cursor_outside_the_list_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="'nope'"):
        slice_page(ITEMS, Page(after="nope"))


def test_each_route_keeps_its_defaults() -> None:
    assert asyncio.run(paging()()) == Page(limit=50, order="asc")
    assert asyncio.run(paging(default_limit=100, default_order="desc")()) == Page(limit=100, order="desc")


def test_letta_s_ascending_flag() -> None:
    either = paging(default_order="desc", sorting="order_or_ascending")
    assert asyncio.run(either(order="asc")).order == "asc"
    assert asyncio.run(either(order="asc", ascending=False)).order == "desc"  # the flag wins when given
    flag_only = paging(sorting="ascending")
    assert asyncio.run(flag_only()).order == "asc"
    assert asyncio.run(flag_only(ascending=False)).order == "desc"


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/plain")
    async def plain(page: Annotated[Page, Depends(paging(default_limit=100, default_order="desc"))]) -> dict:
        return page.__dict__

    @app.get("/either")
    async def either(
        page: Annotated[Page, Depends(paging(sorting="order_or_ascending", sortable=("created_at", "updated_at")))],
    ) -> dict:
        return page.__dict__

    @app.get("/flag")
    async def flag(page: Annotated[Page, Depends(paging(sorting="ascending"))]) -> dict:
        return page.__dict__

    return app


def test_the_query_parameters_each_variant_declares() -> None:
    paths = _app().openapi()["paths"]
    names = {path: [p["name"] for p in paths[path]["get"]["parameters"]] for path in paths}
    assert names == {
        "/plain": ["before", "after", "limit", "order", "order_by"],
        "/either": ["before", "after", "limit", "order", "ascending", "order_by"],
        "/flag": ["before", "after", "limit", "ascending"],
    }
    limit = paths["/plain"]["get"]["parameters"][2]["schema"]
    assert (limit["default"], limit["minimum"], limit["maximum"]) == (100, 1, 1000)
    order_by = paths["/either"]["get"]["parameters"][5]["schema"]
    assert (order_by["enum"], order_by["default"]) == (["created_at", "updated_at"], "created_at")


def test_bad_paging_is_a_422_naming_the_parameter() -> None:
    client = TestClient(_app())
    assert client.get("/plain", params={"after": "x", "limit": 3}).json() == {
        "before": None,
        "after": "x",
        "limit": 3,
        "order": "desc",
        "order_by": None,
    }
    assert client.get("/either", params={"order_by": "updated_at"}).json()["order_by"] == "updated_at"
    for path, params, field in (
        ("/plain", {"limit": 0}, "limit"),
        ("/plain", {"limit": 1001}, "limit"),
        ("/plain", {"order": "up"}, "order"),
        ("/plain", {"order_by": "updated_at"}, "order_by"),
        ("/either", {"order_by": "name"}, "order_by"),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", field]
