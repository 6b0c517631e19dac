"""One typed :class:`Settings`, read from the environment once, validated at start.

Every process (``o serve``, a Lambda handler, a test) builds its settings through
:func:`load_settings` or :func:`settings_from`; the composition root (:mod:`o.runtime`) passes
the parts down, so nothing else reads the environment. A bad value stops the process at start
with the variable's name instead of failing the first request that needs it, and an ``O_*``
variable that names no setting gets a warning naming the closest real one (a misspelt variable
would otherwise be silently ignored).

Names: a top-level field ``x`` is ``O_X``; a field ``f`` of a group ``g`` is ``O_G_F``
(``agent.default_max_steps`` is ``O_AGENT_DEFAULT_MAX_STEPS``). A few fields also answer to a
name of their own, given with :func:`env`: the providers' own key variables
(``OPENAI_API_KEY``), and two short forms (``O_SANDBOX``, ``O_SLEEPTIME``). The CDK stack sets
the Lambdas' environment through :func:`env_name`, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo

from o.config.base import ConfigError, Group, default_data_dir, env, listed
from o.config.tools import FileSettings, McpSettings, SandboxSettings, WebSettings

PREFIX = "O_"

_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")


class DatabaseSecret(Group):
    """AWS: where the database is and who connects: the owner with the RDS secret (migrations), or the
    app role with an IAM token made for each connection (the functions that serve traffic)."""

    host: str | None = None
    secret_arn: str | None = None
    name: str = "o"
    port: int = Field(default=5432, ge=1, le=65535)
    # connect as this user with an IAM auth token (RDS Proxy or Aurora with IAM authentication)
    iam_user: str | None = None
    # the role the migrations create and grant DML on every table to (o.store.roles)
    app_role: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class AgentSettings(Group):
    """The agent loop."""

    # Set in AWS: runs go through this state machine instead of an in-process loop.
    state_machine_arn: str | None = None
    default_max_steps: int = Field(default=50, ge=1, le=1000)
    summarize_threshold: float = Field(default=0.8, gt=0.1, le=1.0)
    summarize_target: float = Field(default=0.5, gt=0.05, lt=1.0)
    # How long a synchronous POST /messages waits on a state machine run before answering 202 with the
    # run to follow (well inside API Gateway's 29 s, with room for a cold start).
    sync_wait_s: float = Field(default=20.0, gt=0)
    # > 0 where a state machine runs the loop: a streamed run is driven in the process serving its stream
    # (tokens reach the client as the model writes them) for up to this many seconds; what is left then,
    # or at a pause for an approval, goes on in the state machine. 0: streams follow the state machine.
    stream_inline_s: float = Field(default=0.0, ge=0)


class ProviderKeys(Group):
    """The LLM providers' API keys, under the variable names their own SDKs use (local mode)."""

    openai: SecretStr | None = env("OPENAI_API_KEY", default=None)
    anthropic: SecretStr | None = env("ANTHROPIC_API_KEY", default=None)
    groq: SecretStr | None = env("GROQ_API_KEY", default=None)
    ollama: SecretStr | None = env("OLLAMA_API_KEY", default=None)
    # optional: a local OpenAI-compatible server usually takes none
    vllm: SecretStr | None = env("VLLM_API_KEY", default=None)
    lmstudio: SecretStr | None = env("LMSTUDIO_API_KEY", default=None)
    # web_search's hosted providers (o/tools/web/search.py): sent only to the operator's search endpoint
    exa: SecretStr | None = env("EXA_API_KEY", default=None)
    tavily: SecretStr | None = env("TAVILY_API_KEY", default=None)

    def get(self, provider: str) -> str | None:
        value: SecretStr | None = getattr(self, provider, None)
        text = value.get_secret_value().strip() if value is not None else ""
        return text or None


class LLMSettings(Group):
    """Calling LLM providers."""

    # Read timeout for one HTTP request to a provider; streams apply it between chunks.
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # Retries after the first attempt, on 408/409/429/5xx and connection errors.
    max_retries: int = Field(default=3, ge=0)
    retry_base_delay_s: float = Field(default=0.5, ge=0)
    retry_max_delay_s: float = Field(default=8.0, ge=0)
    # AWS: API keys come from this Secrets Manager secret (a JSON object) instead of the environment.
    keys_secret_arn: str | None = None
    keys_cache_s: int = Field(default=300, ge=0)
    # The operator's endpoint of each provider (unset: the provider's own API). The operator's key for a
    # provider is sent there and nowhere else.
    openai_base_url: str | None = env("OPENAI_BASE_URL", default=None)
    anthropic_base_url: str | None = None
    groq_base_url: str | None = None
    ollama_base_url: str | None = env("OLLAMA_BASE_URL", default=None)
    # OpenAI-compatible servers (vLLM, llama.cpp's llama-server, SGLang, ...; LM Studio): handles
    # vllm/<model> and lmstudio/<model>; their models are listed from the server's /v1/models
    vllm_base_url: str | None = env("VLLM_API_BASE", default=None)
    lmstudio_base_url: str | None = env("LMSTUDIO_BASE_URL", default=None)
    # Amazon Bedrock (Converse API) in this region, with the process's AWS credentials (on AWS: the
    # function's role); bedrock/<model id or inference profile id>. Unset: Bedrock is off.
    bedrock_region: str | None = None
    # the Bedrock Runtime endpoint (unset: the region's public one; set: e.g. a VPC endpoint)
    bedrock_endpoint_url: str | None = None
    # the model or inference-profile ids GET /v1/models lists for Bedrock
    bedrock_models: tuple[str, ...] = ()
    # how long GET /v1/models reuses what it discovered from a provider (and how long a provider
    # that did not answer is left out before it is asked again)
    models_cache_s: float = Field(default=60.0, ge=0)
    # how long model discovery waits for one provider
    discovery_timeout_s: float = Field(default=3.0, gt=0)
    # Hosts or URL prefixes that a tenant's llm_config.model_endpoint or embedding_config.embedding_endpoint
    # may name besides the operator's endpoints; they are called without the operator's keys. Empty: none.
    allowed_endpoints: tuple[str, ...] = ()

    _split_endpoints = field_validator("allowed_endpoints", "bedrock_models", mode="before")(listed)


class EmbeddingSettings(Group):
    """Embedding models: where the local model's files are, and the providers' endpoints."""

    # Other copies of the local model's two files (e.g. a Lambda layer that keeps only those).
    model_path: Path | None = None
    tokenizer_path: Path | None = None
    # ONNX threads per process: 1 keeps the API responsive beside Postgres on a small machine.
    threads: int = Field(default=1, ge=1, le=64)
    # unset: the chat endpoints (OPENAI_BASE_URL, OLLAMA_BASE_URL), else the providers' own
    openai_base_url: str | None = None
    ollama_base_url: str | None = None


class OutboundSettings(Group):
    """Where O may connect when it calls out (model and embedding endpoints; every outbound HTTP call)."""

    # Hosts or CIDRs that may be reached although they are loopback, link-local, private, unique-local, ...
    allow: tuple[str, ...] = ()
    # Loopback addresses; unset: allowed locally (Ollama on localhost:11434), denied on AWS.
    allow_loopback: bool | None = None

    _split_allow = field_validator("allow", mode="before")(listed)

    @field_validator("allow")
    @classmethod
    def _hosts_or_networks(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(entry):
                    raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR") from None
        return entries


# The KMS encryption context of tool secrets' data keys: o/aws/kms.py sends it, and the stack's grants
# (infra/tool_secrets.py) allow KMS calls only with it, so a data key made for them opens nothing else.
TOOL_SECRETS_KMS_CONTEXT = {"purpose": "o-tool-secrets"}


class SecretSettings(Group):
    """Tool secrets at rest: what wraps the keys that seal them (o/tools/secrets)."""

    # AWS: the KMS key (id, ARN or alias) that makes and unwraps data keys; the stack sets it
    kms_key_id: str | None = None
    # local: the key file, made by `o serve` on its first start (default: secrets.key in the data dir)
    key_file: Path | None = None


class EvolutionSettings(Group):
    """Defaults for every evolution; a start request may override the budget."""

    max_tokens: int = Field(default=200_000, ge=1)
    max_seconds: float = Field(default=3600.0, gt=0)
    # the canary's first weight, then the steps it rises through while live evidence holds (5% → 25% → 50%,
    # then promotion: 100%); each step bakes ``bake_seconds`` a round for at most ``max_bake_rounds`` rounds
    canary_weight: float = Field(default=0.05, gt=0, le=1)
    canary_steps: tuple[float, ...] = (0.25, 0.5)
    bake_seconds: int = Field(default=300, ge=0)
    max_bake_rounds: int = Field(default=3, ge=1)
    replay_sample: int = Field(default=5, ge=0, le=100)
    # candidates the proposer offers per pass; each is shadow-tested, the best of the Pareto front goes on
    candidates_per_pass: int = Field(default=3, ge=1, le=5)
    # AWS: the agent-step function whose `live` alias carries canaries; unset means the local router
    step_function_name: str | None = None
    step_alias: str = "live"
    # AWS: the evolution state machine; unset means evolutions run in-process
    state_machine_arn: str | None = None
    # AWS: the EventBridge bus promotions and rollbacks go to; unset: the owner policy's webhook (o serve)
    event_bus: str | None = None

    _split_steps = field_validator("canary_steps", mode="before")(listed)


class SleeptimeSettings(Group):
    """Sleep-time compute: memory reorganization passes and their triggers."""

    # inside `o serve` (EventBridge Scheduler does it in AWS)
    enabled: bool = env("O_SLEEPTIME", default=True)
    poll_seconds: float = Field(default=30.0, gt=0)
    every_n_messages: int = Field(default=10, ge=1, description="a pass after this many new user messages")
    interval_seconds: float = Field(default=3600.0, ge=0, description="scheduled pass if anything new since")
    max_tokens: int = Field(default=20_000, ge=1)
    max_seconds: float = Field(default=120.0, gt=0)
    max_tool_calls: int = Field(default=12, ge=1)
    message_window: int = Field(default=60, ge=1)
    archival_window: int = Field(default=40, ge=0)
    # cosine similarity above which two recent archival passages say the same thing (the newer goes)
    near_duplicate_similarity: float = Field(default=0.97, gt=0, le=1)
    # 0 = never; else every N-th completed pass starts an evolution (when the agent has evaluation cases)
    evolve_every_n_passes: int = Field(default=0, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where memory lives. Empty means: start the embedded Postgres in ``data_dir`` (or, in AWS, `db`).
    database_url: str | None = Field(default=None, description="libpq URI of Postgres >= 15 with pgvector")
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8283, ge=1, le=65535)
    # processes `o serve` runs to serve requests; None: one per core left beside Postgres
    workers: int | None = Field(default=None, ge=1, le=64)

    # Connection pool for long-running servers; Lambda uses one connection per environment.
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    # RDS Proxy pins connections that use server-side prepared statements.
    disable_prepared_statements: bool = False

    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest accepted request body")
    # uploads that are files, streamed by their routes rather than buffered: an agent file (.af,
    # JSON, parsed whole) and O's bundle (msgpack, spooled to disk and imported frame by frame)
    max_agent_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="largest agent file upload")
    max_bundle_bytes: int = Field(default=4 * 1024**3, ge=1024, description="largest bundle upload")
    run_migrations: bool = True
    runtime: Literal["local", "lambda"] = "local"
    log_level: str = "INFO"
    # Set on a Lambda version published for a canary: the evolution whose candidate it serves.
    canary_evolution: str | None = None
    # Set by the Lambda runtime itself: this process is a Lambda execution environment.
    lambda_runtime_api: str | None = env("AWS_LAMBDA_RUNTIME_API", default=None)

    db: DatabaseSecret = Field(default_factory=DatabaseSecret)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    keys: ProviderKeys = Field(default_factory=ProviderKeys)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)
    evolution: EvolutionSettings = Field(default_factory=EvolutionSettings)
    sleeptime: SleeptimeSettings = Field(default_factory=SleeptimeSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a libpq URI starting with postgresql://")
        return value


# -- names ------------------------------------------------------------------------------------------------


def _groups() -> dict[str, type[Group]]:
    out: dict[str, type[Group]] = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Group):
            out[name] = field.annotation
    return out


def env_name(group: str | None, field: str) -> str:
    """The ``O_…`` variable of a setting: ``env_name("agent", "state_machine_arn")`` is
    ``O_AGENT_STATE_MACHINE_ARN``; ``env_name(None, "max_body_bytes")`` is ``O_MAX_BODY_BYTES``."""
    model: type[BaseModel] = Settings if group is None else _groups()[group]
    if field not in model.model_fields:
        raise KeyError(f"no setting {field!r} in {group or 'the top level'}")
    return (PREFIX + (f"{group}_{field}" if group else field)).upper()


def _aliases(info: FieldInfo) -> list[str]:
    extra = info.json_schema_extra
    names = extra.get("env") if isinstance(extra, dict) else None
    return [str(n) for n in names] if isinstance(names, list) else []


@lru_cache(maxsize=1)
def env_names() -> dict[str, tuple[str | None, str]]:
    """Every variable a setting reads → (group or None, field)."""
    names: dict[str, tuple[str | None, str]] = {}
    groups = _groups()
    for name, info in Settings.model_fields.items():
        if name in groups:
            for sub, sub_info in groups[name].model_fields.items():
                for variable in (env_name(name, sub), *_aliases(sub_info)):
                    names[variable] = (name, sub)
        else:
            for variable in (env_name(None, name), *_aliases(info)):
                names[variable] = (None, name)
    return names


# Variables with the O_ prefix that are not settings of the service (so no warning is due).
# (the test suite's database; the CDK app's pre-built layer folder)
NOT_SETTINGS = frozenset({"O_TEST_DATABASE_URL", "O_LAYER_DIR"})


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``O_*`` variable that names no setting, with the closest real name."""
    environ = os.environ if environ is None else environ
    known = env_names()
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith(PREFIX) or variable in known or variable in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(variable, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{variable} is not a setting of O and is ignored{hint}")
    return warnings


# -- reading ----------------------------------------------------------------------------------------------


def _collect(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    # an O_ name first, then an alias only if the O_ name did not set the field
    known = sorted(env_names().items(), key=lambda item: not item[0].startswith(PREFIX))
    for variable, (group, field) in known:
        raw = environ.get(variable)
        if raw is None or raw.strip() == "":
            continue  # empty means unset, as a shell `O_X=` suggests
        target = values.setdefault(group, {}) if group else values
        target.setdefault(field, raw)
    return values


def _variable_of(loc: tuple[int | str, ...]) -> str:
    """The variable a validation error's location points at (a group's own check names the group)."""
    head = str(loc[0]) if loc else ""
    if head in _groups():
        if len(loc) > 1 and str(loc[1]) in _groups()[head].model_fields:
            return env_name(head, str(loc[1]))
        return f"{PREFIX}{head.upper()}_*"
    return env_name(None, head) if head in Settings.model_fields else PREFIX + head.upper()


def settings_from(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings from ``environ``, with explicit ``overrides`` (command-line flags) on top; a
    :class:`ConfigError` names each bad variable."""
    values = _collect(environ)
    for name, value in overrides.items():
        if value is None:
            continue
        # a group's override (sleeptime={"enabled": False}) changes that field, not the whole group
        group = values.get(name)
        values[name] = {**group, **value} if isinstance(group, dict) and isinstance(value, dict) else value
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{_variable_of(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


def build_settings(**overrides: Any) -> Settings:
    """The process environment's settings with ``overrides`` on top (the CLI's flags)."""
    return settings_from(os.environ, **overrides)


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Read and validate the environment once per process."""
    return build_settings()


def export_to_children(values: Mapping[str, str]) -> None:
    """Put settings into this process's environment for the child processes it starts (the workers
    of a multi-process `o serve` read their settings from the environment they inherit)."""
    os.environ.update(values)


def powertools_names() -> tuple[str, str]:
    """(service, metrics namespace) for Powertools: its own variables, which the CDK stack sets per
    function, with O's names when they are unset (`o serve`, tests)."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME", "o"), os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "O")
