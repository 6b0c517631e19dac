"""Deployment settings read from CDK context (``cdk.json`` or ``cdk deploy -c key=value``).

Every value has a default so ``cdk synth`` works on a fresh checkout without AWS
credentials; a bad value fails the synth with a message naming the context key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONTEXT_PREFIX = "o:"
# What the CDK CLI sets from the credentials and profile it runs with (``cdk deploy``, ``cdk synth``).
ACCOUNT_ENV = "CDK_DEFAULT_ACCOUNT"
REGION_ENV = "CDK_DEFAULT_REGION"

DbRemoval = Literal["snapshot", "retain", "destroy"]
EconomyEgress = Literal["ipv6", "natInstance"]
Profile = Literal["standard", "economy"]
DEFAULT_SLEEPTIME_SCHEDULE = "rate(1 hour)"
# The profile is also read from this plain key: `cdk deploy -c profile=economy`.
PLAIN_PROFILE_KEY = "profile"
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

    # What the stack is built for: "standard" (always warm: an RDS instance behind RDS Proxy, a NAT
    # gateway, interface endpoints) or "economy" (near zero when idle: Aurora Serverless v2 that pauses at
    # 0 ACU, no proxy, IPv6 egress through an egress-only internet gateway, no interface endpoints, no
    # periodic sleep-time sweep, three alarms and no dashboard). Also read from the plain context key
    # ``profile`` (``cdk deploy -c profile=economy``).
    profile: Profile = "standard"

    # Network: the agent loop calls LLM providers on the internet, so the functions need a way out. Standard:
    # NAT gateways, at least one (~$33/month each); one per AZ (natGateways = maxAzs) keeps egress up when an
    # AZ fails. Economy: 0 NAT gateways by default, and economyEgress says how the functions get out:
    # "ipv6" (default, free: dual-stack subnets, an egress-only internet gateway, AWS APIs on their
    # dual-stack endpoints; reaches only providers that answer on IPv6) or "natInstance" (one small NAT
    # instance, natInstanceType, ~$7/month with its public IPv4 address; reaches IPv4-only providers too).
    max_azs: int = Field(default=2, alias="maxAzs", ge=2, le=3)
    nat_gateways_set: int | None = Field(default=None, alias="natGateways", ge=0, le=3)
    economy_egress: EconomyEgress = Field(default="ipv6", alias="economyEgress")
    nat_instance_type: str = Field(default="t4g.nano", alias="natInstanceType", pattern=r"^[a-z0-9]+\.[a-z0-9]+$")
    interface_endpoints_set: bool | None = Field(default=None, alias="interfaceEndpoints")

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
    # Economy: Aurora PostgreSQL (a version with 0-ACU auto-pause), its largest size, idle time before it pauses.
    aurora_postgres_version: str = Field(default="16.6", alias="auroraPostgresVersion", pattern=r"^1[5-7]\.\d+$")
    db_max_acu: float = Field(default=4.0, alias="dbMaxAcu", ge=1, le=256)
    db_auto_pause_minutes: int = Field(default=5, alias="dbAutoPauseMinutes", ge=5, le=1440)

    # API
    throttle_rate: float = Field(default=100.0, alias="throttleRate", gt=0)
    throttle_burst: int = Field(default=200, alias="throttleBurst", gt=0)
    max_body_bytes: int = Field(default=1_048_576, alias="maxBodyBytes", ge=1024, le=10_485_760)

    # Agent loop: iterations per execution before it continues as a new one (see infra.agent_loop).
    iteration_cap: int = Field(default=500, alias="iterationCap", ge=1, le=1500)
    # How long an execution waits for an approval before the run fails; unset waits as long as a
    # Standard execution lives (one year), as Letta's approvals do not expire.
    approval_timeout_seconds: int | None = Field(default=None, alias="approvalTimeoutSeconds", ge=1, le=31_536_000)

    # Sleep-time: the default schedule of the stack (EventBridge Scheduler expression); "none" for no
    # periodic sweep (the economy default: each sweep would wake a paused database; passes still follow
    # runs, every N user messages).
    sleeptime_schedule_set: str | None = Field(default=None, alias="sleeptimeSchedule")

    # Tool sandbox: reserved concurrency caps how many tool calls run at once, so untrusted code cannot take
    # the account's whole concurrency from the API and the agent loop. Lambda keeps 100 of the account's
    # quota unreserved: an account whose quota is the new-account 10 cannot reserve any and must ask for more
    # or deploy with -c o:sandboxConcurrency=none (no cap).
    sandbox_concurrency: int | None = Field(default=20, alias="sandboxConcurrency", ge=1, le=1000)

    # Amazon Bedrock: the model (or inference-profile) ids GET /v1/models lists, comma-separated. Bedrock
    # itself is on in the stack's region whatever this says (the functions' role may invoke it).
    bedrock_models: str = Field(default="", alias="bedrockModels", pattern=r"^[A-Za-z0-9.:_, -]*$")

    # web_search for the agents (O_WEB_SEARCH_PROVIDER): exa or tavily, their keys in the LLM keys secret as
    # EXA_API_KEY / TAVILY_API_KEY, or a SearXNG instance at webSearchUrl; unset: agents get no web_search
    web_search_provider: Literal["exa", "tavily", "searxng"] | None = Field(default=None, alias="webSearchProvider")
    web_search_url: str | None = Field(default=None, alias="webSearchUrl", pattern=r"^https?://[^\s]+$")

    log_retention_days: int = Field(default=30, alias="logRetentionDays")

    # Folder with a pre-built layer (``python/`` inside); skips the pip build (tests, CI).
    layer_dir: str | None = Field(default=None, alias="layerDir")

    @model_validator(mode="after")
    def _searxng_needs_url(self) -> DeployConfig:
        if self.web_search_provider == "searxng" and not self.web_search_url:
            raise ValueError(f"{CONTEXT_PREFIX}webSearchProvider=searxng needs {CONTEXT_PREFIX}webSearchUrl")
        return self

    @model_validator(mode="after")
    def _egress(self) -> DeployConfig:
        if self.profile == "standard" and self.nat_gateways == 0:
            raise ValueError(
                f"{CONTEXT_PREFIX}natGateways: the standard profile needs at least 1 NAT gateway (the functions call "
                f"LLM providers on the internet); {CONTEXT_PREFIX}profile=economy uses a NAT instance instead"
            )
        return self

    @property
    def economy(self) -> bool:
        return self.profile == "economy"

    @property
    def nat_gateways(self) -> int:
        if self.nat_gateways_set is not None:
            return self.nat_gateways_set
        return 0 if self.economy else 1

    @property
    def nat_instance(self) -> bool:
        """One NAT instance for the functions' egress: economy without NAT gateways, if asked for."""
        return self.economy and self.nat_gateways == 0 and self.economy_egress == "natInstance"

    @property
    def ipv6_egress(self) -> bool:
        """Egress over IPv6 only (an egress-only internet gateway): economy without NAT gateways, by default."""
        return self.economy and self.nat_gateways == 0 and self.economy_egress == "ipv6"

    @property
    def interface_endpoints(self) -> bool:
        # ~$7.30/month each per AZ: economy sends those calls out over IPv6 (or the NAT instance) instead
        return (not self.economy) if self.interface_endpoints_set is None else self.interface_endpoints_set

    @property
    def sleeptime_schedule(self) -> str | None:
        if self.sleeptime_schedule_set is None:
            return None if self.economy else DEFAULT_SLEEPTIME_SCHEDULE
        return None if self.sleeptime_schedule_set.lower() == "none" else self.sleeptime_schedule_set

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
    if "profile" not in values and get(PLAIN_PROFILE_KEY) is not None:
        values["profile"] = get(PLAIN_PROFILE_KEY)
    try:
        return DeployConfig.model_validate(values)
    except ValidationError as exc:
        # a field's error names its key; the model's own check names it in its message
        problems = "; ".join(
            f"{CONTEXT_PREFIX}{err['loc'][0]}: {err['msg']}" if err["loc"] else err["msg"] for err in exc.errors()
        )
        raise ValueError(f"invalid CDK context: {problems}") from exc
