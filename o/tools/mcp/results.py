"""What O keeps of an MCP server's answers: the tools it may offer agents, and a tool result as text.

A listed tool is offered only if its name is one a model can call and its input schema is a valid
JSON Schema for an object; any other is skipped with a warning naming it (one broken tool does not
keep a server's other tools from its agents).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from o.observability import logger
from o.tools.sandbox.base import truncate

if TYPE_CHECKING:  # the SDK and jsonschema load with the first connection, not with the process
    from mcp import types

# the function names OpenAI, Anthropic and the other providers accept
_CALLABLE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class OfferedTool:
    name: str
    description: str
    parameters: dict[str, Any]

    def json_schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


def offered(listed: list[types.Tool], server_name: str) -> tuple[list[OfferedTool], list[Skipped]]:
    """The tools of ``listed`` an agent can be given, and the others with the reason each is skipped."""
    good: list[OfferedTool] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for tool in listed:
        reason = _refusal(tool, seen)
        if reason is not None:
            logger.warning("MCP tool skipped", extra={"mcp_server": server_name, "tool": tool.name, "reason": reason})
            skipped.append(Skipped(tool.name, reason))
            continue
        seen.add(tool.name)
        good.append(OfferedTool(tool.name, tool.description or tool.title or "", dict(tool.input_schema)))
    return good, skipped


def _refusal(tool: types.Tool, seen: set[str]) -> str | None:
    from jsonschema import exceptions as schema_errors
    from jsonschema import validators

    if not _CALLABLE_NAME.match(tool.name):
        return "its name is not a callable function name (letters, digits, _ and -, at most 64)"
    if tool.name in seen:
        return "the server lists two tools of this name"
    schema = tool.input_schema
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        return "its input schema is not an object schema"
    if not isinstance(schema.get("properties", {}), dict):
        return "its input schema's properties are not an object"
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_errors.SchemaError as exc:
        return f"its input schema is not valid JSON Schema: {exc.message}"
    return None


def result_text(result: types.CallToolResult, max_chars: int) -> str:
    """The result as the text a model reads: its text blocks, a note for each non-text block, or its
    structured content as JSON; at most ``max_chars`` characters (with a note saying it was cut)."""
    parts: list[str] = []
    size = 0
    for block in result.content:
        part = _block_text(block)
        parts.append(part)
        size += len(part)
        if size > max_chars:
            break
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return truncate("\n".join(parts), max_chars)


def _block_text(block: Any) -> str:
    from mcp import types

    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.EmbeddedResource) and isinstance(block.resource, types.TextResourceContents):
        return block.resource.text
    if isinstance(block, types.ResourceLink):
        return f"[resource: {block.uri}]"
    mime = getattr(block, "mime_type", None) or "unknown type"
    return f"[{getattr(block, 'type', 'content')} content ({mime}) not shown]"
