"""The OpenAPI document declares, for every operation, the errors it can return in the one shape
they have (ErrorBody): a client generated from it (letta-client is) reads what O sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

ERROR = {"$ref": "#/components/schemas/ErrorBody"}


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_status_has_the_error_body(app: FastAPI) -> None:
    for method, path, operation in operations(app):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == ERROR, (method, path, status)


def test_422_is_o_s_error_body_not_fastapi_s(app: FastAPI) -> None:
    doc = app.openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["ErrorBody"]["properties"]["detail"]["type"] == "string"
    for method, path, operation in operations(app):
        assert {"413", "422"} <= set(operation["responses"]), (method, path)


# operations that take no API key: the health check, and O's own upload target (the URL's token stands for it)
UNAUTHENTICATED = {("GET", "/v1/health/"), ("PUT", "/v1/uploads/{upload_id}/content")}


def test_every_authenticated_operation_declares_401(app: FastAPI) -> None:
    for method, path, operation in operations(app):
        if (method.upper(), path) not in UNAUTHENTICATED and path != "/v1/health/":
            assert "401" in operation["responses"], (method, path)
    assert "401" not in app.openapi()["paths"]["/v1/uploads/{upload_id}/content"]["put"]["responses"]


def test_a_422_body_matches_its_declaration(client: TestClient) -> None:
    body = client.get("/v1/agents/", params={"limit": 0}).json()
    assert set(body) == {"detail", "code", "errors"} and body["code"] == "invalid_request"
    assert body["errors"][0]["loc"] == ["query", "limit"] and isinstance(body["errors"][0]["msg"], str)
    assert body["detail"].startswith("invalid request: query.limit")


def test_a_body_that_is_not_utf8_is_a_declared_400(client: TestClient) -> None:
    response = client.post("/v1/blocks/", content=b'{"label": "\xff"}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "http_error"
    assert "400" in client.get("/openapi.json").json()["paths"]["/v1/blocks/"]["post"]["responses"]
