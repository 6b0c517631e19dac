"""An organization's custom tools: create, change, version, attach to agents, and the
agents' tool variables. The API and evolution both go through here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from o.errors import Conflict, InvalidInput, NotFound
from o.ids import new_id
from o.store import agents as agent_store
from o.store import tools as tool_store
from o.store.db import Conn
from o.tools import base
from o.tools.schema import derive_json_schema, find_function, parse_source
from o.tools.secrets.envelope import MASKED, SecretBox, variable_context

_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_RETURN_CHARS = 1_000_000


@dataclass
class ToolSpec:
    source_code: str
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    args_json_schema: dict[str, Any] | None = None
    source_type: str = "python"
    return_char_limit: int = 6000
    pip_requirements: list[dict[str, Any]] = field(default_factory=list)
    npm_requirements: list[dict[str, Any]] = field(default_factory=list)
    default_requires_approval: bool = False
    enable_parallel_execution: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


def resolve_schema(
    source_code: str, json_schema: dict[str, Any] | None, description: str | None, source_type: str = "python"
) -> dict[str, Any]:
    """The tool's JSON schema: the one given (checked against the source) or one derived from it."""
    if source_type != "python":
        raise InvalidInput(f"source_type {source_type!r} is not supported; tools are Python functions")
    if json_schema is None:
        schema = derive_json_schema(source_code)
    else:
        schema = _checked_schema(json_schema)
        # the named function must exist, or every call would fail at run time
        find_function(parse_source(source_code), schema["name"])
    if description is not None:
        schema = {**schema, "description": description}
    if not _TOOL_NAME.match(schema["name"]):
        raise InvalidInput(f"tool name {schema['name']!r} must be a Python identifier of at most 64 characters")
    return schema


def _checked_schema(schema: dict[str, Any]) -> dict[str, Any]:
    name = schema.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput("json_schema needs a 'name' (the function to call)")
    parameters = schema.get("parameters", {"type": "object", "properties": {}, "required": []})
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise InvalidInput("json_schema.parameters must be a JSON schema of type 'object'")
    if not isinstance(parameters.get("properties", {}), dict):
        raise InvalidInput("json_schema.parameters.properties must be an object")
    return {
        "name": name,
        "description": str(schema.get("description") or ""),
        "parameters": parameters,
        **{k: v for k, v in schema.items() if k not in ("name", "description", "parameters")},
    }


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_RETURN_CHARS:
        raise InvalidInput(f"return_char_limit must be between 1 and {MAX_RETURN_CHARS}")


def create(conn: Conn, organization_id: str, spec: ToolSpec) -> dict[str, Any]:
    _check_limit(spec.return_char_limit)
    schema = resolve_schema(spec.source_code, spec.json_schema, spec.description, spec.source_type)
    # the base tools' names are taken first: a custom tool named like one is a 409, never a stand-in
    base.ensure(conn, organization_id)
    return tool_store.insert(conn, _row(organization_id, spec, schema))


def _row(organization_id: str, spec: ToolSpec, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("tool"),
        "organization_id": organization_id,
        "name": schema["name"],
        "description": schema.get("description") or None,
        "tool_type": "custom",
        "source_type": spec.source_type,
        "source_code": spec.source_code,
        "json_schema": schema,
        "args_json_schema": spec.args_json_schema,
        "tags": spec.tags,
        "return_char_limit": spec.return_char_limit,
        "pip_requirements": spec.pip_requirements,
        "npm_requirements": spec.npm_requirements,
        "default_requires_approval": spec.default_requires_approval,
        "enable_parallel_execution": spec.enable_parallel_execution,
        "metadata": spec.metadata,
    }


def upsert(conn: Conn, organization_id: str, spec: ToolSpec) -> dict[str, Any]:
    """Create the tool, or update the organization's tool of the same name."""
    _check_limit(spec.return_char_limit)
    schema = resolve_schema(spec.source_code, spec.json_schema, spec.description, spec.source_type)
    row = _row(organization_id, spec, schema)
    base.ensure(conn, organization_id)
    existing = tool_store.get_by_name(conn, organization_id, row["name"], for_update=True)
    if existing is not None and base.is_base(existing):
        raise Conflict(f"{row['name']!r} is one of Letta's base tools; name your tool differently")
    if existing is None:
        created = tool_store.insert_unless_named(conn, row)
        if created is not None:
            return created
        # a concurrent upsert of this name won the race: update what it made
        existing = tool_store.get_by_name(conn, organization_id, row["name"], for_update=True)
        assert existing is not None
    changes = {k: v for k, v in row.items() if k in tool_store.UPDATABLE and k != "tool_type"}
    updated = tool_store.update(conn, organization_id, existing["id"], changes)
    assert updated is not None
    _touch_agents(conn, existing["id"])
    return updated


def get(conn: Conn, organization_id: str, tool_id: str) -> dict[str, Any]:
    tool = tool_store.get(conn, organization_id, tool_id)
    if tool is None:
        raise NotFound(f"tool {tool_id} not found")
    return tool


def update(conn: Conn, organization_id: str, tool_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Letta's ToolUpdate: a new source re-derives the schema unless one is given with it."""
    current = tool_store.get(conn, organization_id, tool_id, for_update=True)
    if current is None:
        raise NotFound(f"tool {tool_id} not found")
    changes = dict(changes)
    if "return_char_limit" in changes:
        _check_limit(changes["return_char_limit"])
    if base.is_base(current):
        fixed = sorted(set(changes) - base.BASE_TOOL_SETTINGS)
        if fixed:
            raise InvalidInput(
                f"{current['name']!r} is one of Letta's base tools: {fixed} cannot change "
                f"(only {sorted(base.BASE_TOOL_SETTINGS)})"
            )
    touches_schema = {"source_code", "json_schema", "description", "source_type"} & set(changes)
    if touches_schema:
        source = changes.get("source_code", current["source_code"]) or ""
        explicit = changes.get("json_schema")
        if explicit is None and "source_code" not in changes:
            explicit = current["json_schema"]
        description = changes.get("description")
        schema = resolve_schema(source, explicit, description, changes.get("source_type", current["source_type"]))
        changes["json_schema"] = schema
        changes["name"] = schema["name"]
        changes["description"] = schema.get("description") or None
    updated = tool_store.update(conn, organization_id, tool_id, changes)
    assert updated is not None
    if updated["version"] != current["version"]:
        _touch_agents(conn, tool_id)
    return updated


def delete(conn: Conn, organization_id: str, tool_id: str) -> None:
    tool = tool_store.get(conn, organization_id, tool_id)
    if tool is not None and base.is_base(tool):
        raise InvalidInput(f"{tool['name']!r} is one of Letta's base tools: detach it from agents instead")
    agents = tool_store.agents_using(conn, tool_id) if tool else []
    if not tool_store.delete(conn, organization_id, tool_id):
        raise NotFound(f"tool {tool_id} not found")
    for agent_id in agents:
        agent_store.touch(conn, agent_id)


def versions(conn: Conn, organization_id: str, tool_id: str, **page: Any) -> list[dict[str, Any]]:
    """A page of the tool's versions (see :func:`o.store.tools.versions` for ``page``)."""
    get(conn, organization_id, tool_id)
    return tool_store.versions(conn, organization_id, tool_id, **page)


def _touch_agents(conn: Conn, tool_id: str) -> None:
    # the agents' offered tool schemas changed: their compiled prompts are stale
    for agent_id in tool_store.agents_using(conn, tool_id):
        agent_store.touch(conn, agent_id)


def attach(conn: Conn, organization_id: str, agent_id: str, tool_id: str) -> None:
    """Attach the tool; one that requires approval by default gets the agent's approval rule with it."""
    agent = agent_store.require(conn, organization_id, agent_id, for_update=True)
    tool = get(conn, organization_id, tool_id)
    if tool_store.attach(conn, agent_id, tool_id):
        rules = agent["tool_rules"] or []
        if tool["default_requires_approval"] and not requires_approval(rules, tool["name"]):
            rules = with_approval(rules, tool["name"], True)
            agent_store.update(conn, organization_id, agent_id, {"tool_rules": rules})
        else:
            agent_store.touch(conn, agent_id)


APPROVAL_RULE = "requires_approval"


def requires_approval(rules: list[dict[str, Any]], tool_name: str) -> bool:
    return any(_is_approval_rule(rule, tool_name) for rule in rules)


def _is_approval_rule(rule: dict[str, Any], tool_name: str) -> bool:
    kind = rule.get("type")
    return rule.get("tool_name") == tool_name and kind in (APPROVAL_RULE, "RequiresApprovalToolRule", "approval")


def with_approval(rules: list[dict[str, Any]], tool_name: str, required: bool) -> list[dict[str, Any]]:
    """The agent's tool rules with Letta's ``requires_approval`` rule for ``tool_name`` added or
    removed: how an agent's approval requirement for one tool is kept (it is one of its tool rules)."""
    kept = [rule for rule in rules if not _is_approval_rule(rule, tool_name)]
    return [*kept, {"tool_name": tool_name, "type": APPROVAL_RULE}] if required else kept


def detach(conn: Conn, organization_id: str, agent_id: str, tool_id: str) -> None:
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    get(conn, organization_id, tool_id)
    if tool_store.detach(conn, agent_id, tool_id):
        agent_store.touch(conn, agent_id)


def agent_tools(conn: Conn, organization_id: str, agent_id: str) -> list[dict[str, Any]]:
    agent_store.require(conn, organization_id, agent_id)
    return tool_store.for_agent(conn, agent_id)


def agent_env(conn: Conn, organization_id: str, agent_id: str) -> list[dict[str, Any]]:
    """The agent's tool variables (Letta's tool_exec_environment_variables / secrets): names and
    descriptions; their values never leave the store except for a tool run (:func:`variables_for_run`)."""
    agent_store.require(conn, organization_id, agent_id)
    return tool_store.env_for_agent(conn, agent_id)


def plan_variables(variables: dict[str, str], stored: set[str]) -> tuple[dict[str, str], set[str]]:
    """Which values to seal, and which variables to keep as stored: a client that sends back the
    masked value it was shown (a read-modify-write of the agent) keeps the secret, not the mask."""
    for key in variables:
        if not _ENV_KEY.match(key):
            raise InvalidInput(f"tool variable name {key!r} must look like an environment variable name")
    keep = {key for key, value in variables.items() if value == MASKED}
    unknown = sorted(keep - stored)
    if unknown:
        raise InvalidInput(
            f"tool variable {unknown[0]!r}: {MASKED!r} is how stored values are shown, not a value; send the value"
        )
    return {key: value for key, value in variables.items() if key not in keep}, keep


def set_agent_env(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    variables: dict[str, str],
    descriptions: dict[str, str] | None = None,
    *,
    secrets: SecretBox,
) -> list[dict[str, Any]]:
    """Replace the agent's tool variables, sealed by ``secrets``; only this agent's tool runs will see them."""
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    fresh, keep = plan_variables({k: str(v) for k, v in variables.items()}, tool_store.env_keys(conn, agent_id))
    sealed = {key: secrets.seal(value, variable_context(agent_id, key)) for key, value in fresh.items()}
    tool_store.replace_env(conn, agent_id, sealed, descriptions or {}, keep=keep)
    return tool_store.env_for_agent(conn, agent_id)


def variables_for_run(conn: Conn, agent_id: str, secrets: SecretBox) -> dict[str, str]:
    """The agent's tool variables in the clear, for the sandbox of one tool run and nothing else."""
    return {row["key"]: _opened(row, agent_id, secrets) for row in tool_store.env_for_run(conn, agent_id)}


def _opened(row: dict[str, Any], agent_id: str, secrets: SecretBox) -> str:
    if row["sealed"] is None:  # written in plaintext by an earlier release, not sealed yet
        return str(row["value"])
    return secrets.open(row["sealed"], variable_context(agent_id, row["key"]))


def seal_plaintext(conn: Conn, secrets: SecretBox, *, batch: int = 500) -> int:
    """Seal up to ``batch`` tool variables an earlier release stored in plaintext; how many it sealed."""
    rows = tool_store.plaintext_env(conn, batch)
    for row in rows:
        tool_store.seal_env(
            conn, row["agent_id"], row["key"], secrets.seal(row["value"], variable_context(row["agent_id"], row["key"]))
        )
    return len(rows)
