"""Letta's llm_config and embedding_config as requests take them, and model handles."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from o.api.schemas.agent_settings import ResponseFormat
from o.llm.config import EndpointType, LLMConfig, endpoint_type_of, parse_handle

# The largest context window O accepts; today's largest models have about two million tokens.
MAX_CONTEXT_WINDOW = 10_000_000


def _known_handle(handle: str) -> str:
    parse_handle(handle)  # ValueError names what is wrong: the form, or a provider O cannot call
    return handle


# A model handle such as "openai/gpt-4o-mini": refused at the request, not at the agent's first send.
Handle = Annotated[str, AfterValidator(_known_handle)]


class LLMConfigIn(BaseModel):
    """Letta's llm_config. Letta clients send many provider-specific fields; keep them all, but
    only a config the agent loop can call with (an endpoint type O has a client for, a handle of a
    known provider, values each field takes)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    model_endpoint_type: EndpointType = "openai"
    model_endpoint: str | None = None
    context_window: int = Field(default=128_000, ge=256, le=MAX_CONTEXT_WINDOW)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_CONTEXT_WINDOW)
    handle: Handle | None = None
    response_format: ResponseFormat | None = None

    @field_validator("model_endpoint_type", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        # Letta's other names for a type ("lmstudio_openai", "llamacpp") are stored as O's canonical one
        return endpoint_type_of(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _callable(self) -> LLMConfigIn:
        """The extra fields the loop reads (``reasoning_effort``, ...) must hold values it takes."""
        try:
            LLMConfig.model_validate(self.model_dump(exclude_none=True))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise PydanticCustomError(
                "llm_config", "not a usable llm_config: {problems}", {"problems": problems}
            ) from None
        return self


class EmbeddingConfigIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    embedding_endpoint_type: str
    embedding_model: str
    # pgvector's limit for a vector column
    embedding_dim: int = Field(ge=1, le=16_000)
    embedding_endpoint: str | None = None
    embedding_chunk_size: int | None = Field(default=300, ge=1, le=100_000)
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    handle: str | None = None


def llm_config_from_handle(handle: str, context_window: int | None = None) -> dict[str, Any]:
    provider, model = parse_handle(handle)
    config = LLMConfigIn.model_validate(
        {"model": model, "model_endpoint_type": provider, "handle": handle, "context_window": context_window or 128_000}
    )
    return config.model_dump(exclude_none=True)
