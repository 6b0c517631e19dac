"""Deployment settings read from CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Every value has a default so ``cdk synth`` works on a fresh checkout without AWS
credentials; a bad value fails the synth with a message naming the context key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTEXT_PREFIX = "o:"


class DeployConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    account: str = Field(default="123456789012", pattern=r"^\d{12}$")
    region: str = "us-east-1"
    stack_name: str = Field(default="O", alias="stackName", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,40}$")

    # Network: the agent loop calls LLM providers on the internet, so there is at least one NAT.
    max_azs: int = Field(default=2, alias="maxAzs", ge=2, le=3)
    nat_gateways: int = Field(default=1, alias="natGateways", ge=1, le=3)
    interface_endpoints: bool = Field(default=True, alias="interfaceEndpoints")

    # Database
    postgres_version: str = Field(default="17.6", alias="postgresVersion", pattern=r"^1[67]\.\d+$")
    db_instance_type: str = Field(default="t4g.micro", alias="dbInstanceType")
    db_storage_gib: int = Field(default=20, alias="dbStorageGiB", ge=20, le=16384)
    db_multi_az: bool = Field(default=False, alias="dbMultiAz")
    db_deletion_protection: bool = Field(default=True, alias="dbDeletionProtection")
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

    log_retention_days: int = Field(default=30, alias="logRetentionDays")

    # Folder with a pre-built layer (``python/`` inside); skips the pip build (tests, CI).
    layer_dir: str | None = Field(default=None, alias="layerDir")


def _coerce(value: Any) -> Any:
    # ``cdk deploy -c key=value`` always gives strings.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
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
