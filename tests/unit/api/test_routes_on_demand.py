"""The tables of o.api.routers against the routes themselves: for every route of every router, and every
method, a path like the route's is matched by the routes of the modules the tables name exactly as by
the whole app (the same route, or the same 405), so a Lambda including routers on demand answers each
request as `o serve` does."""

from __future__ import annotations

import importlib
import re

import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, Route

from o.api.routers import MODULES, Routes, modules_for

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"{(\w+)(:path)?}")


def concrete(path: str) -> str:
    """A path the route matches: each parameter an id-like value (a path parameter two segments)."""
    return _PARAM.sub(lambda m: "dir/name.txt" if m.group(2) else f"{m.group(1)}-1f3e", path)


def matched(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    """The route Starlette's router serves: the first full match, else the first partial one (405)."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


@pytest.fixture(scope="module")
def by_module() -> dict[str, list[Route]]:
    """Each module's routes (their paths with the router's prefix), in the order the app tries them."""
    found: dict[str, list[Route]] = {}
    for name, attributes in MODULES.items():
        module = importlib.import_module(f"o.api.routers.{name}")
        found[name] = [r for a in attributes for r in getattr(module, a).routes if isinstance(r, Route)]
    return found


def test_every_router_is_included_once_in_order() -> None:
    app = FastAPI()
    own = list(app.router.routes)
    routes = Routes(app)
    routes.include(["agents", "health"])
    routes.include(["agent_files", "agents"])
    assert list(routes.included) == ["agents", "health", "agent_files"]
    assert (
        app.router.routes
        == own + routes.included["health"] + routes.included["agent_files"] + routes.included["agents"]
    )
    routes.include()
    assert set(routes.included) == set(MODULES)
    assert app.router.routes == own + [r for m in MODULES for r in routes.included[m]]


def test_each_route_is_found_among_the_modules_its_path_names(by_module: dict[str, list[Route]]) -> None:
    for module, routes in by_module.items():
        for route in routes:
            path = concrete(route.path)
            for method in route.methods or ():
                needed = modules_for(path, method)
                assert needed is not None, f"{path} ({module}) is in no table: a Lambda would include every router"
                assert module in needed, (method, path, module, needed)
                assert modules_for(path.rstrip("/") if path.endswith("/") else path + "/", method) == needed


def test_a_path_is_matched_by_its_modules_as_by_the_whole_app(by_module: dict[str, list[Route]]) -> None:
    every: list[BaseRoute] = [r for routes in by_module.values() for r in routes]
    for route in every:
        path = concrete(route.path)  # type: ignore[attr-defined]
        for method in METHODS:
            needed = modules_for(path, method) or ()
            subset: list[BaseRoute] = [r for m in MODULES if m in needed for r in by_module[m]]
            assert matched(subset, path, method) is matched(every, path, method), (method, path)


def test_the_agent_files_paths_are_not_read_as_agent_ids(by_module: dict[str, list[Route]]) -> None:
    route = matched([r for routes in by_module.values() for r in routes], "/v1/agents/import", "POST")
    assert isinstance(route, Route) and route.path == "/v1/agents/import"
    assert modules_for("/v1/agents/import", "POST") == ("agent_files", "agents", "agent_changes")


def test_a_read_of_an_agent_gets_the_agents_reads_only() -> None:
    for path in ("/v1/agents", "/v1/agents/", "/v1/agents/agent-1f3e", "/v1/agents/agent-1f3e/"):
        assert modules_for(path, "GET") == ("agents",), path
        for method in ("POST", "PATCH", "DELETE", "PUT"):
            assert modules_for(path, method) == ("agents", "agent_changes"), (method, path)


def test_what_needs_every_route_gets_every_route() -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/v1/nowhere/1", "/", "/v2/agents/"):
        assert modules_for(path, "GET") is None, path
    assert modules_for("/console/index.html", "GET") == ()
    assert modules_for("/docs-assets/swagger-ui.css", "GET") == ()
