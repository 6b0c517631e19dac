"""Which listed MCP tools an agent may be given, and a tool result as the text a model reads."""

from __future__ import annotations

from typing import Any

from mcp import types

from o.tools.mcp.results import offered, result_text
from o.tools.mcp.servers import ServerConfig, _headers, _merged


def _tool(name: str, schema: dict[str, Any]) -> types.Tool:
    return types.Tool(name=name, description=f"{name} tool", input_schema=schema)


def test_malformed_tools_are_skipped_each_with_its_reason() -> None:
    good = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    listed = [
        _tool("search", good),
        _tool("search", good),
        _tool("has space", good),
        _tool("typo", {"type": "object", "properties": {"q": {"type": "strng"}}}),
        _tool("props", {"type": "object", "properties": ["q"]}),
        _tool("no_params", {"type": "object"}),
    ]
    tools, skipped = offered(listed, "srv")
    assert [t.name for t in tools] == ["search", "no_params"]
    assert tools[0].json_schema() == {"name": "search", "description": "search tool", "parameters": good}
    reasons = {s.name: s.reason for s in skipped}
    assert reasons["search"] == "the server lists two tools of this name"
    assert "callable function name" in reasons["has space"]
    assert "not valid JSON Schema" in reasons["typo"]
    assert reasons["props"] == "its input schema's properties are not an object"


def test_result_text_joins_blocks_notes_the_rest_and_caps() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="a"),
            types.ImageContent(type="image", data="AAAA", mime_type="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///x", text="embedded", mime_type="text/plain"),
            ),
        ]
    )
    assert result_text(result, 1000) == "a\n[image content (image/png) not shown]\nembedded"
    structured = types.CallToolResult(content=[], structured_content={"n": 1})
    assert result_text(structured, 1000) == '{"n": 1}'
    many = types.CallToolResult(content=[types.TextContent(type="text", text="x" * 400) for _ in range(10)])
    capped = result_text(many, 500)
    assert len(capped) == 500 and capped.endswith("limit 500]")


def test_auth_headers_and_masked_updates() -> None:
    config = ServerConfig("streamable_http", server_url="https://x", auth_token="tok", custom_headers={"X-K": "v"})
    assert _headers(config) == {"X-K": "v", "Authorization": "Bearer tok"}
    assert _headers(ServerConfig("sse", server_url="https://x", auth_header="X-Api-Key", auth_token="k")) == {
        "X-Api-Key": "k"
    }
    # the mask sent back keeps each stored secret; a new value replaces it
    kept = _merged(config, {"auth_token": "********", "custom_headers": {"X-K": "********", "X-New": "n"}})
    assert kept.auth_token == "tok" and kept.custom_headers == {"X-K": "v", "X-New": "n"}
    # another kind: nothing of the old configuration carries over
    stdio = _merged(config, {"server_type": "stdio", "command": "srv", "args": ["-v"]})
    assert stdio == ServerConfig("stdio", command="srv", args=("-v",))
