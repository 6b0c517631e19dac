"""Per-agent model settings (Letta's ``llm_config``).

:class:`LLMConfig` accepts the JSON Letta clients send and return, ignores fields O does
not use, and fills what Letta derives: a ``handle`` such as ``"openai/gpt-4o-mini"``
implies the endpoint type and model, and each endpoint type has a default endpoint and
context window.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# vllm: any OpenAI-compatible server (vLLM, llama.cpp's llama-server, SGLang, ...); lmstudio: LM Studio's
# OpenAI-compatible API; bedrock: Amazon Bedrock's Converse API (o/aws/bedrock.py).
EndpointType = Literal["openai", "anthropic", "groq", "ollama", "vllm", "lmstudio", "bedrock"]
ENDPOINT_TYPES: tuple[str, ...] = ("openai", "anthropic", "groq", "ollama", "vllm", "lmstudio", "bedrock")

# Other names Letta clients use for these types (Letta's provider type for LM Studio is
# "lmstudio_openai"; its endpoint types include "lmstudio-chatcompletions" and "llamacpp"). A config is
# stored with the canonical name, which the SDK's LlmConfig accepts.
ENDPOINT_TYPE_ALIASES: dict[str, str] = {
    "lmstudio_openai": "lmstudio",
    "lmstudio-openai": "lmstudio",
    "lmstudio-chatcompletions": "lmstudio",
    "llamacpp": "vllm",
    "openai-compatible": "vllm",
}

DEFAULT_ENDPOINTS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "ollama": "http://localhost:11434/v1",
    "anthropic": "https://api.anthropic.com",
    # the servers' own defaults on this machine
    "vllm": "http://localhost:8000/v1",
    "lmstudio": "http://localhost:1234/v1",
    # a stand-in: the operator's region decides (O_LLM_BEDROCK_REGION / O_LLM_BEDROCK_ENDPOINT_URL)
    "bedrock": "https://bedrock-runtime.us-east-1.amazonaws.com",
}

# Used only when neither the caller nor a known model gives a window.
DEFAULT_CONTEXT_WINDOWS: dict[str, int] = {
    "openai": 128_000,
    "anthropic": 200_000,
    "groq": 128_000,
    "ollama": 8_192,
    "vllm": 8_192,
    "lmstudio": 8_192,
    "bedrock": 128_000,
}


def endpoint_type_of(name: str) -> str:
    """The canonical endpoint type for ``name`` (lower-cased; Letta's other names mapped)."""
    lowered = name.strip().lower()
    return ENDPOINT_TYPE_ALIASES.get(lowered, lowered)


# Known models whose window differs from their provider's default (prefix match, longest first).
_MODEL_WINDOWS: dict[str, int] = {
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    # Bedrock ids (optionally behind a cross-region inference profile prefix: "us.", "eu.", ...)
    "anthropic.claude": 200_000,
    "amazon.nova": 300_000,
}

_PROFILE_PREFIX = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")


def _window_for(endpoint_type: str, model: str) -> int:
    if endpoint_type == "bedrock":
        model = next((model[len(p) :] for p in _PROFILE_PREFIX if model.startswith(p)), model)
    for prefix in sorted(_MODEL_WINDOWS, key=len, reverse=True):
        if model.startswith(prefix):
            return _MODEL_WINDOWS[prefix]
    return DEFAULT_CONTEXT_WINDOWS[endpoint_type]


def parse_handle(handle: str) -> tuple[str, str]:
    """Split ``"provider/model"`` into (endpoint type, model); the model may itself contain slashes."""
    provider, sep, model = handle.partition("/")
    provider = endpoint_type_of(provider)
    if not sep or not model.strip():
        raise ValueError(f"handle {handle!r} must look like 'provider/model', e.g. 'openai/gpt-4o-mini'")
    if provider not in ENDPOINT_TYPES:
        raise ValueError(f"handle {handle!r} names unknown provider {provider!r}; expected one of {ENDPOINT_TYPES}")
    return provider, model.strip()


def _with_derived_fields(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` completed the way Letta completes an ``llm_config``: fields implied by the handle,
    a lower-case endpoint type, and that type's default endpoint and context window."""
    data = dict(data)
    handle = data.get("handle")
    if handle:
        provider, model = parse_handle(str(handle))
        data.setdefault("model_endpoint_type", provider)
        if not data.get("model"):
            data["model"] = model
    endpoint_type = data.get("model_endpoint_type")
    if isinstance(endpoint_type, str):
        endpoint_type = endpoint_type_of(endpoint_type)
        data["model_endpoint_type"] = endpoint_type
    # An unknown type is left for field validation to reject with its own message.
    if endpoint_type in ENDPOINT_TYPES:
        _fill_endpoint_defaults(data, str(endpoint_type), handle_given=bool(handle))
    return data


def _fill_endpoint_defaults(data: dict[str, Any], endpoint_type: str, *, handle_given: bool) -> None:
    model = data.get("model")
    if not data.get("model_endpoint"):
        data["model_endpoint"] = DEFAULT_ENDPOINTS[endpoint_type]
    if data.get("context_window") is None and model:
        data["context_window"] = _window_for(endpoint_type, str(model))
    if not handle_given and model:
        data["handle"] = f"{endpoint_type}/{model}"


class LLMConfig(BaseModel):
    """Letta's ``LLMConfig``: which model an agent uses and how it is called."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model: str
    model_endpoint_type: EndpointType
    model_endpoint: str | None = None
    model_wrapper: str | None = None
    context_window: int = Field(gt=0)
    handle: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=4096, gt=0)
    put_inner_thoughts_in_kwargs: bool = False
    enable_reasoner: bool = False
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    max_reasoning_tokens: int = Field(default=0, ge=0)
    frequency_penalty: float | None = None
    parallel_tool_calls: bool = False
    # Letta's response_format: {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}};
    # None is plain text (what providers do by default)
    response_format: dict[str, Any] | None = None
    provider_name: str | None = None
    provider_category: str | None = None

    @field_validator("response_format", mode="before")
    @classmethod
    def _text_is_default(cls, value: Any) -> Any:
        # plain text is what every provider does unasked: nothing to send
        return None if isinstance(value, dict) and value.get("type") in (None, "text") else value

    @model_validator(mode="before")
    @classmethod
    def _fill_from_handle(cls, data: Any) -> Any:
        return _with_derived_fields(data) if isinstance(data, dict) else data

    @classmethod
    def from_handle(cls, handle: str, **overrides: Any) -> LLMConfig:
        return cls.model_validate({"handle": handle, **overrides})

    @property
    def endpoint(self) -> str:
        return self.model_endpoint or DEFAULT_ENDPOINTS[self.model_endpoint_type]
