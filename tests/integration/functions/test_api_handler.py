"""The API Lambda handler invoked in-process with API Gateway proxy events, on the real Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from o.store import orgs
from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.lambdas import Context, fresh_handler, service_environment


@pytest.fixture
def handler_module(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    service_environment(monkeypatch, pg_url, POWERTOOLS_TRACE_DISABLED="1", POWERTOOLS_METRICS_NAMESPACE="O")
    with fresh_handler("functions.api.handler") as module:
        yield module


def event(method: str, path: str, key: str | None, body: Any = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "host": "api.example.com"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": "/live" + path,
            "stage": "live",
            "requestId": "r1",
            "identity": {"sourceIp": "203.0.113.1"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def test_api_gateway_event_round_trip(handler_module: ModuleType, db: Database) -> None:
    key = new_org_key(db)
    ctx = Context("o-api", alias="live")
    created = handler_module.handler(
        event("POST", "/v1/agents/", key, {"name": "lam", "memory_blocks": [{"label": "human", "value": "Ada"}]}), ctx
    )
    assert created["statusCode"] == 200, created["body"]
    agent = json.loads(created["body"])
    edited = handler_module.handler(
        event("PATCH", f"/v1/agents/{agent['id']}/core-memory/blocks/human", key, {"value": "Ada L."}), ctx
    )
    assert json.loads(edited["body"])["value"] == "Ada L."
    fetched = handler_module.handler(event("GET", f"/v1/agents/{agent['id']}", key), ctx)
    assert json.loads(fetched["body"])["blocks"][0]["value"] == "Ada L."

    denied = handler_module.handler(event("GET", "/v1/agents/", None), ctx)
    assert denied["statusCode"] == 401 and "API key" in json.loads(denied["body"])["detail"]
    bad = handler_module.handler(event("POST", "/v1/agents/", key, {"bogus": 1}), ctx)
    assert bad["statusCode"] == 422 and "bogus" in json.loads(bad["body"])["detail"]
    # One connection per execution environment, reused across invocations.
    assert handler_module._runtime.db._pool.max_size == 1


def test_paths_answer_with_and_without_a_trailing_slash_behind_the_stage(
    handler_module: ModuleType, db: Database
) -> None:
    """No redirect: behind API Gateway a redirect's Location loses the stage (/live) and fails."""
    key = new_org_key(db)
    ctx = Context("o-api", alias="live")
    body = {"name": "slash", "memory_blocks": [{"label": "human", "value": "Ada"}]}
    created = handler_module.handler(event("POST", "/v1/agents", key, body), ctx)
    assert created["statusCode"] == 200, created
    agent_id = json.loads(created["body"])["id"]
    for path in ("/v1/agents", "/v1/agents/", f"/v1/agents/{agent_id}", f"/v1/agents/{agent_id}/"):
        response = handler_module.handler(event("GET", path, key), ctx)
        assert response["statusCode"] == 200, (path, response["statusCode"], response.get("headers"))
    missing = handler_module.handler(event("GET", "/v1/nothing-here/", key), ctx)
    assert missing["statusCode"] == 404 and "location" not in {k.lower() for k in missing.get("headers", {})}


def test_a_revoked_key_is_refused_by_the_next_invocation(handler_module: ModuleType, db: Database) -> None:
    key = new_org_key(db)
    ctx = Context("o-api", alias="live")
    # a warm execution environment that has served this key already
    for _ in range(3):
        assert handler_module.handler(event("GET", "/v1/agents/", key), ctx)["statusCode"] == 200
    with db.transaction() as conn:
        key_id = conn.execute("SELECT id FROM api_keys WHERE key_hash = %s", (orgs.hash_key(key),)).fetchone()["id"]
        assert orgs.revoke_api_key(conn, key_id) is not None
    refused = handler_module.handler(event("GET", "/v1/agents/", key), ctx)
    assert refused["statusCode"] == 401 and "revoked" in json.loads(refused["body"])["detail"]


def test_the_console_is_served_through_the_api_lambda_behind_the_stage(handler_module: ModuleType) -> None:
    """On AWS the console's static files come from the API function, same origin as the API it calls."""
    ctx = Context("o-api", alias="live")
    page = handler_module.handler(event("GET", "/console/", None), ctx)
    assert page["statusCode"] == 200 and page["headers"]["content-type"].startswith("text/html")
    assert '<script type="module" src="js/app.js">' in page["body"]  # relative: works under /live/console/
    script = handler_module.handler(event("GET", "/console/js/app.js", None), ctx)
    assert script["statusCode"] == 200 and "javascript" in script["headers"]["content-type"]
    assert not script.get("isBase64Encoded")  # text: no binary media types needed on the REST API
    bare = handler_module.handler(event("GET", "/console", None), ctx)
    assert bare["statusCode"] == 308 and bare["headers"]["location"] == "console/"  # keeps the stage path
    assert handler_module.handler(event("GET", "/console/nope.js", None), ctx)["statusCode"] == 404
