"""letta-client in strict mode (``_strict_response_validation=True``) over every operation O serves.

The table is ``operations.OPERATIONS``: a route of the app without an entry fails
``test_every_route_has_an_entry``, so nothing new is served without an SDK call that checks its shape.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest

from tests.integration.sdk.conftest import Live, raw_client, strict_client
from tests.integration.sdk.operations import OPERATIONS, Op, World, populate, strictly


def _routes(live: Live) -> set[tuple[str, str]]:
    paths = live.app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


@pytest.fixture(scope="module")
def world(live: Live, org_key: str) -> Iterator[World]:
    with raw_client(live, org_key) as http:
        w = World(sdk=strict_client(live, org_key), http=http, llm_config=live.llm_config(), model=live.model)
        strictly(lambda: populate(w))
        yield w
        if "mcp_http" in w.extra:  # the MCP server the mcp_servers operations started
            w.extra["mcp_http"].stop()


def test_every_route_has_an_entry(live: Live) -> None:
    keys = [op.key for op in OPERATIONS]
    assert len(keys) == len(set(keys)), "an operation is listed twice"
    served = _routes(live)
    assert sorted(served - set(keys)) == [], "routes without an SDK call in tests/integration/sdk/operations.py"
    assert sorted(set(keys) - served) == [], "entries for routes the app does not serve"


def test_sdk_names_are_sdk_methods(world: World) -> None:
    for op in OPERATIONS:
        if op.sdk is not None:
            assert callable(operator.attrgetter(op.sdk)(world.sdk)), op.sdk


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_operation_in_strict_mode(op: Op, world: World) -> None:
    strictly(lambda: op.call(world))
