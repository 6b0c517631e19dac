"""Deployment settings read from CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Every value has a default so ``cdk synth`` works on a fresh checkout without AWS
credentials; a bad value fails the synth with a message naming the context key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTEXT_PREFIX = "o:"
# What the CDK CLI sets from the credentials and profile it runs with (``cdk deploy``, ``cdk synth``).
ACCOUNT_ENV = "CDK_DEFAULT_ACCOUNT"
REGION_ENV = "CDK_DEFAULT_REGION"

DbRemoval = Literal["snapshot", "retain", "destroy"]
_REMOVAL = {
    "snapshot": RemovalPolicy.SNAPSHOT,
    # Retained on delete and on replacement, but not when the create that made it fails: a failed first
    # deploy must roll back to nothing, or the retry meets what it left behind (CloudFormation's
    # RetainExceptOnCreate).
    "retain": RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    "destroy": RemovalPolicy.DESTROY,
}


class DeployConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # Unset: the account and region the CDK CLI runs with (CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION); with
    # neither, an environment-agnostic template (see :func:`deploy_environment`).
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    stack_name: str = Field(default="O", alias="stackName", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,40}$")

    # Network: the agent loop calls LLM providers on the internet, so there is at least one NAT. One is
    # cheapest (~$33/month each); one per AZ (natGateways = maxAzs) keeps egress up when an AZ fails.
    max_azs: int = Field(default=2, alias="maxAzs", ge=2, le=3)
    nat_gateways: int = Field(default=1, alias="natGateways", ge=1, le=3)
    interface_endpoints: bool = Field(default=True, alias="interfaceEndpoints")

    # Database
    postgres_version: str = Field(default="17.6", alias="postgresVersion", pattern=r"^1[67]\.\d+$")
    db_instance_type: str = Field(default="t4g.micro", alias="dbInstanceType")
    db_storage_gib: int = Field(default=20, alias="dbStorageGiB", ge=20, le=16384)
    db_multi_az: bool = Field(default=False, alias="dbMultiAz")
    # Off by default: a first deploy that fails after the instance exists rolls back by deleting it, and a
    # protected instance refuses, leaving the stack in ROLLBACK_FAILED until someone lifts the protection by
    # hand. The data is safe without it: every delete leaves a final snapshot (dbRemovalPolicy). Turn it on
    # once the stack is up (-c o:dbDeletionProtection=true).
    db_deletion_protection: bool = Field(default=False, alias="dbDeletionProtection")
    # What deleting the stack (or the instance) does to the data: a final snapshot, keep the instance, or
    # nothing (throw-away stacks).
    db_removal_policy: DbRemoval = Field(default="snapshot", alias="dbRemovalPolicy")
    db_name: str = Field(default="o", alias="dbName", pattern=r"^[a-z][a-z0-9_]{0,30}$")

    # API
    throttle_rate: float = Field(default=100.0, alias="throttleRate", gt=0)
    throttle_burst: int = Field(default=200, alias="throttleBurst", gt=0)
    max_body_bytes: int = Field(default=1_048_576, alias="maxBodyBytes", ge=1024, le=10_485_760)

    # Agent loop: iterations per execution before it continues as a new one (see infra.agent_loop).
    iteration_cap: int = Field(default=500, alias="iterationCap", ge=1, le=1500)
    # How long an execution waits for an approval before the run fails; unset waits as long as a
    # Standard execution lives (one year), as Letta's approvals do not expire.
    approval_timeout_seconds: int | None = Field(default=None, alias="approvalTimeoutSeconds", ge=1, le=31_536_000)

    # Sleep-time: the default schedule of the stack (EventBridge Scheduler expression).
    sleeptime_schedule: str = Field(default="rate(1 hour)", alias="sleeptimeSchedule")

    # Tool sandbox: reserved concurrency caps how many tool calls run at once, so untrusted code cannot take
    # the account's whole concurrency from the API and the agent loop. Lambda keeps 100 of the account's
    # quota unreserved: an account whose quota is the new-account 10 cannot reserve any and must ask for more
    # or deploy with -c o:sandboxConcurrency=none (no cap).
    sandbox_concurrency: int | None = Field(default=20, alias="sandboxConcurrency", ge=1, le=1000)

    # Amazon Bedrock: the model (or inference-profile) ids GET /v1/models lists, comma-separated. Bedrock
    # itself is on in the stack's region whatever this says (the functions' role may invoke it).
    bedrock_models: str = Field(default="", alias="bedrockModels", pattern=r"^[A-Za-z0-9.:_, -]*$")

    log_retention_days: int = Field(default=30, alias="logRetentionDays")

    # Folder with a pre-built layer (``python/`` inside); skips the pip build (tests, CI).
    layer_dir: str | None = Field(default=None, alias="layerDir")

    @property
    def db_removal(self) -> RemovalPolicy:
        return _REMOVAL[self.db_removal_policy]


def deploy_environment(config: DeployConfig, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Where the stack goes: the context's account and region, else the CLI's (``CDK_DEFAULT_*``).

    Neither (an offline ``cdk synth`` without credentials) gives ``(None, None)``: an
    environment-agnostic template that resolves its account, region and availability zones at
    deploy time. No placeholder account is ever written into a template.
    """
    return config.account or environ.get(ACCOUNT_ENV) or None, config.region or environ.get(REGION_ENV) or None


def _coerce(value: Any) -> Any:
    # ``cdk deploy -c key=value`` always gives strings.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    return value


def config_from_context(get: Any, keys: Iterable[str] = ()) -> DeployConfig:
    """Build the config from a ``node.try_get_context``-like callable.

    ``keys`` (every context key there is) lets a misspelt ``o:`` key fail the synth instead of
    being silently ignored.
    """
    known = {CONTEXT_PREFIX + (field.alias or name) for name, field in DeployConfig.model_fields.items()}
    unknown = sorted(k for k in keys if k.startswith(CONTEXT_PREFIX) and k not in known)
    if unknown:
        raise ValueError(f"unknown CDK context key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, field in DeployConfig.model_fields.items():
        key = field.alias or name
        raw = get(CONTEXT_PREFIX + key)
        if raw is not None:
            values[key] = _coerce(raw)
    try:
        return DeployConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{CONTEXT_PREFIX}{err['loc'][0]}: {err['msg']}" for err in exc.errors() if err["loc"])
        raise ValueError(f"invalid CDK context: {problems}") from exc
