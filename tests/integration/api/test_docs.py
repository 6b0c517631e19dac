"""/docs and /redoc work with no network: every script, style and icon the pages load is served by O."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

_LOADED = re.compile(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]|url:\s*['"]([^'"]+)['"]|spec-url=['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_only_from_o_itself(client: TestClient, page: str) -> None:
    html = client.get(page, headers={"Authorization": ""})
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    loaded = {next(g for g in m.groups() if g) for m in _LOADED.finditer(html.text)}
    assert "/openapi.json" in loaded
    assert all(url.startswith("/") for url in loaded), loaded  # nothing from a CDN, nothing from another host
    assets = [url for url in loaded if url.startswith("/docs-assets/")]
    assert assets, html.text
    for url in assets:
        got = client.get(url, headers={"Authorization": ""})
        assert got.status_code == 200, url
        assert len(got.content) > 500, url
    if page == "/docs":
        bundle = client.get("/docs-assets/swagger-ui-bundle.js", headers={"Authorization": ""}).text
        assert "SwaggerUIBundle" in bundle and len(bundle) > 500_000  # the whole UI, not a loader


def test_the_openapi_document_has_examples_for_the_main_operations(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("CreateAgent", "SendMessages"):
        assert schemas[name].get("examples"), name
