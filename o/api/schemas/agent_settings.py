"""Letta's model settings on agent create/update, turned into O's ``llm_config``; and the Letta fields O
cannot honour, refused by name.

Letta moved per-model options from ``llm_config`` to ``model_settings`` (one shape per provider, told
apart by ``provider_type``) and still accepts the older top-level fields (``parallel_tool_calls``,
``response_format``, ``max_tokens``, ``enable_reasoner``, ...). Each is applied to the agent's
``llm_config``, which the provider clients read (:mod:`o.llm.openai_compat`, :mod:`o.llm.anthropic_native`),
in a fixed order: the config from ``llm_config`` / ``model``, then ``model_settings``, then the top-level
fields. A field O has no way to honour is a 422 naming it, never dropped quietly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from o.api.schemas.agent_state import OPENAI_COMPATIBLE
from o.api.schemas.common import Request
from o.errors import InvalidInput
from o.memory.files.views import OPEN_FILES_BOUNDS, WINDOW_CHARS_BOUNDS

MAX_OUTPUT_TOKENS = 10_000_000


class TextFormat(Request):
    type: Literal["text"] = "text"


class JsonObjectFormat(Request):
    type: Literal["json_object"] = "json_object"


class JsonSchemaFormat(Request):
    """OpenAI's json_schema response format: ``{"name", "schema", "strict"}``."""

    type: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _has_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        schema = value.get("schema")
        if not isinstance(schema, dict):
            raise ValueError("json_schema needs 'schema', a JSON schema object")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"json_schema.schema is not a valid JSON schema: {exc.message}") from None
        name = value.get("name", "response")
        if not isinstance(name, str) or not name:
            raise ValueError("json_schema.name must be a non-empty string")
        return {**value, "name": name}


def _format_type(value: Any) -> str | None:
    kind = value.get("type", "text") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


ResponseFormat = Annotated[
    Annotated[TextFormat, Tag("text")]
    | Annotated[JsonObjectFormat, Tag("json_object")]
    | Annotated[JsonSchemaFormat, Tag("json_schema")],
    Discriminator(
        _format_type,
        custom_error_type="unsupported_type",
        custom_error_message="response_format.type must be 'text', 'json_object' or 'json_schema'",
    ),
]


def stored_format(value: TextFormat | JsonObjectFormat | JsonSchemaFormat | None) -> dict[str, Any] | None:
    """What ``llm_config.response_format`` holds: None for plain text (the providers' default)."""
    if value is None or value.type == "text":
        return None
    return value.model_dump()


class Reasoning(Request):
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"]


class Thinking(Request):
    type: Literal["enabled", "disabled"] = "enabled"
    budget_tokens: int | None = Field(default=None, ge=0, le=MAX_OUTPUT_TOKENS)


class ModelSettings(Request):
    """Letta's ``model_settings`` (OpenAIModelSettings, AnthropicModelSettings, GroqModelSettings, ...):
    the fields O honours. Fields of other providers' shapes are refused by name (extra fields are errors)."""

    provider_type: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    # Anthropic's shapes
    thinking: Thinking | None = None
    effort: Literal["low", "medium", "high"] | None = None
    # tool-schema strictness and GPT-5 verbosity: O sends neither
    strict: bool | None = None
    verbosity: str | None = None

    @field_validator("strict", "verbosity")
    @classmethod
    def _not_sent(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            raise ValueError(f"{info.field_name} is not supported by O; leave model_settings.{info.field_name} unset")
        return value


def apply_model_settings(llm: dict[str, Any], settings: ModelSettings) -> dict[str, Any]:
    """``llm`` (an llm_config) with ``settings`` applied."""
    out = dict(llm)
    provider = out.get("model_endpoint_type")
    # Ollama, vLLM and LM Studio serve OpenAI's API and Letta's settings have no shape of theirs: they take OpenAI's
    accepted = {provider, "openai"} if provider in OPENAI_COMPATIBLE else {provider}
    if settings.provider_type is not None and settings.provider_type.lower() not in accepted:
        raise InvalidInput(
            f"model_settings.provider_type {settings.provider_type!r} does not match the agent's model "
            f"provider {provider!r}",
            field="model_settings.provider_type",
        )
    if settings.temperature is not None:
        out["temperature"] = settings.temperature
    if settings.max_output_tokens is not None:
        out["max_tokens"] = settings.max_output_tokens
    if settings.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = settings.parallel_tool_calls
    if "response_format" in settings.model_fields_set:
        out["response_format"] = stored_format(settings.response_format)
    if settings.reasoning is not None:
        effort = settings.reasoning.reasoning_effort
        out["reasoning_effort"] = None if effort == "none" else effort
    if settings.effort is not None:
        out["reasoning_effort"] = settings.effort
    if settings.thinking is not None:
        enabled = settings.thinking.type == "enabled"
        out["enable_reasoner"] = enabled
        out["max_reasoning_tokens"] = (settings.thinking.budget_tokens or 0) if enabled else 0
    return out


# Letta's per-agent file caps (o.memory.files.views): None keeps the agent's current (or the default) cap
MaxFilesOpen = Annotated[
    int | None,
    Field(
        ge=OPEN_FILES_BOUNDS[0],
        le=OPEN_FILES_BOUNDS[1],
        description="how many files the agent keeps open at once (opening one more closes the least recently used)",
    ),
]
WindowChars = Annotated[
    int | None,
    Field(
        ge=WINDOW_CHARS_BOUNDS[0],
        le=WINDOW_CHARS_BOUNDS[1],
        description="how many characters of each open file the agent sees",
    ),
]
FILE_CAPS = ("max_files_open", "per_file_view_window_char_limit")


# Letta fields O cannot honour, with why: accepted only when unset or at their "off" value (None,
# False, empty); any other value is a 422 naming the field.
UNSUPPORTED: dict[str, str] = {
    "base_template_id": "templates are a Letta Cloud feature O does not have",
    "template_id": "templates are a Letta Cloud feature O does not have",
    "from_template": "templates are a Letta Cloud feature O does not have",
    "template": "templates are a Letta Cloud feature O does not have",
    "memory_variables": "templates are a Letta Cloud feature O does not have",
    "project": "O has no projects",
    "project_id": "O has no projects",
    "hidden": "O does not hide agents",
    "compaction_settings": "O summarises by its own context policy (O_AGENT_SUMMARIZE_*); per-agent compaction "
    "settings are not supported",
    "folder_ids": "attach folders once the agent exists (agents.folders.attach)",
    "source_ids": "attach folders (sources) once the agent exists (agents.folders.attach)",
    "include_default_source": "O makes no default folder; create one and attach it",
    "include_base_tool_rules": "O adds no base tool rules; give the rules you want in tool_rules",
    "message_ids": "O manages which messages are in context",
    "last_run_completion": "run statistics are kept by the server",
    "last_run_duration_ms": "run statistics are kept by the server",
    "last_stop_reason": "run statistics are kept by the server",
}


def _is_off(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {} or value == ""


def refuse_unsupported(value: Any, info: ValidationInfo) -> Any:
    """A field validator for the fields of :data:`UNSUPPORTED`."""
    if not _is_off(value):
        reason = UNSUPPORTED[info.field_name or ""]
        raise PydanticCustomError(
            "unsupported_field", "{field} is not supported by O: {reason}", {"field": info.field_name, "reason": reason}
        )
    return value
