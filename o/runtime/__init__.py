"""The composition root: settings → database → adapters → services. `o serve`, the CLI and every
Lambda handler start here, and only here is it decided what runs locally and what on AWS.

Each port has a local adapter and an AWS adapter (:mod:`o.aws`); the settings pick one, once:

==========================  ==================================  ========================================
port                        local                               AWS (when the setting is present)
==========================  ==================================  ========================================
database URL                embedded Postgres / O_DATABASE_URL  RDS secret (O_DB_SECRET_ARN)
provider keys (KeySource)   the settings (OPENAI_API_KEY, …)    Secrets Manager (O_LLM_KEYS_SECRET_ARN)
tool Sandbox                a confined local process            the sandbox Lambda (O_SANDBOX_*)
tool secrets (KeyWrapper)   key file in the data dir (0600)     KMS data keys (O_SECRETS_KMS_KEY_ID)
agent RunLauncher           the loop in this process            agent-loop state machine (O_AGENT_…)
evolution launcher          a thread in this process            evolution state machine (O_EVOLUTION_…)
canary AliasRouter          hashed split of run ids             weighted Lambda alias (O_EVOLUTION_…)
outcome metrics             revision_outcomes rows              CloudWatch (EMF in, GetMetricData out)
sleep-time scheduler        a thread in `o serve`               EventBridge Scheduler (infra only)
files' bytes (BlobStore)    <data dir>/files                    S3 bucket (O_FILES_BUCKET)
upload sessions, exports    O's own PUT/GET routes, a thread    presigned S3 URLs, jobs on the ingest queue
file ingestion              a worker thread in `o serve`        ingest function on SQS (O_FILES_INGEST_QUEUE_URL)
==========================  ==================================  ========================================

The AWS adapters are imported only when chosen, so local mode never loads boto3.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from o.config import ConfigError, Settings, env_name, load_settings, unknown_variables
from o.llm.keys import KeySource, SettingsKeySource
from o.memory.embeddings import Embedders
from o.net.outbound import OutboundPolicy
from o.observability import logger
from o.store.db import Database
from o.tools.sandbox.base import Sandbox
from o.tools.sandbox.local import LocalProcessSandbox
from o.tools.secrets.envelope import SecretBox, Unconfigured
from o.tools.secrets.keyfile import KeyFile

# What only `o serve`, the API or the evolution use is imported where they use it: the agent-step
# Lambda's cold start does not pay for the evolution loop, the files' services or the model catalog.
if TYPE_CHECKING:
    from fastapi import FastAPI

    from o.agent.engine import Engine
    from o.agent.runner import Executions
    from o.agent.serving import OutcomeMetrics
    from o.api.deps import Services
    from o.evolution import loop
    from o.evolution.notify import DecisionEvents
    from o.evolution.rollout import AliasRouter
    from o.llm.catalog import ModelCatalog
    from o.llm.client import ClientOptions

    # imported where local mode uses it: psutil (its dependency) is not in the Lambda layer
    from o.store.embedded import EmbeddedPostgres
    from o.store.migrate import Progress as MigrationProgress
    from o.tools.mcp.servers import McpServers


class Service(Protocol):
    def stop(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    db: Database
    database_url: str
    embedded: EmbeddedPostgres | None = None
    services: list[Service] = field(default_factory=list)

    def close(self) -> None:
        """Stop the services, the pool and the embedded Postgres, in that order: one that fails to
        stop must not leave the database running."""
        try:
            for service in self.services:
                try:
                    service.stop()
                except Exception:
                    logger.exception("stopping a service failed")
            self.db.close()
        finally:
            if self.embedded is not None:
                self.embedded.stop()


# -- the database -------------------------------------------------------------------------------------------


def configured_database_url(settings: Settings) -> str | None:
    """O_DATABASE_URL, else the URI built from the RDS secret or for the IAM user (AWS); None when
    none is set."""
    if settings.database_url:
        return settings.database_url
    if settings.db.iam_user and not settings.db.secret_arn:
        from o.aws.database import iam_database_url

        if not settings.db.host:
            raise ConfigError("invalid configuration: O_DB_IAM_USER needs O_DB_HOST (the RDS Proxy endpoint)")
        return iam_database_url(settings.db.host, settings.db.iam_user, settings.db.name, port=settings.db.port)
    if not settings.db.secret_arn:
        return None
    if not settings.db.host:
        raise ConfigError("invalid configuration: O_DB_SECRET_ARN needs O_DB_HOST (the RDS Proxy endpoint)")
    from o.aws.database import database_url_from_secret

    return database_url_from_secret(settings.db.host, settings.db.secret_arn, settings.db.name)


def database_password(settings: Settings) -> Callable[[], str] | None:
    """An IAM auth token for each new connection of the IAM user (AWS); None: the URI says it all."""
    if not settings.db.iam_user or settings.database_url or settings.db.secret_arn or not settings.db.host:
        return None
    from o.aws.database import IamAuthToken

    return IamAuthToken(settings.db.host, settings.db.port, settings.db.iam_user)


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured database, else the embedded Postgres in the data dir (local mode)."""
    url = configured_database_url(settings)
    if url is not None:
        return url, None
    if settings.runtime == "lambda":
        raise ConfigError("invalid configuration: a Lambda needs O_DB_SECRET_ARN and O_DB_HOST (or O_DATABASE_URL)")
    from o.store.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.url, embedded


def start(
    settings: Settings, *, migrate_schema: bool | None = None, progress: MigrationProgress | None = None
) -> Runtime:
    """Settings → database (embedded or not), migrated unless told otherwise (``progress`` hears of each file)."""
    for warning in unknown_variables():
        logger.warning(warning)
    url, embedded = resolve_database_url(settings)
    try:
        migrating = settings.run_migrations if migrate_schema is None else migrate_schema
        return _open(settings, url, embedded, migrating, progress)
    except BaseException:
        # a refused schema or a failed migration must not leave the embedded Postgres running
        if embedded is not None:
            embedded.stop()
        raise


def _open(
    settings: Settings,
    url: str,
    embedded: EmbeddedPostgres | None,
    migrate_schema: bool,
    progress: MigrationProgress | None = None,
) -> Runtime:
    if migrate_schema:
        from o.store.migrate import migrate

        migrate(url, app_role=settings.db.app_role, progress=progress)
    lambda_mode = settings.runtime == "lambda"
    db = Database(
        url,
        min_size=1 if lambda_mode else settings.pool_min,
        max_size=1 if lambda_mode else settings.pool_max,
        prepared_statements=not (lambda_mode or settings.disable_prepared_statements),
        password=database_password(settings),
    ).open(wait=not lambda_mode)
    rt = Runtime(settings=settings, db=db, database_url=url, embedded=embedded)
    if migrate_schema:
        try:
            seal_plaintext_secrets(rt)
        except BaseException:
            db.close()
            raise
    return rt


def upgrade(rt: Runtime, progress: MigrationProgress | None = None) -> tuple[list[str], int]:
    """`o migrate`: the pending migrations, then the data step that needs a key and so cannot be SQL;
    (the migrations applied, the tool variables sealed)."""
    from o.store.migrate import migrate

    applied = migrate(rt.database_url, app_role=rt.settings.db.app_role, progress=progress)
    return applied, seal_plaintext_secrets(rt)


def seal_plaintext_secrets(rt: Runtime) -> int:
    """Seal the tool variables an earlier release stored in plaintext (it wrote them before
    schema/007): at every migrating start, so it also finishes after an interruption. It is not part
    of the SQL migration because it needs the key (KMS or the key file); until it runs, those rows
    stay readable, so no tool run breaks in between. Nothing to seal costs one indexed query."""
    from o.tools import catalog  # only a migrating start seals: no Lambda's cold start imports the tools' catalog

    box = secret_box(rt.settings)
    sealed = 0
    while True:
        with rt.db.transaction() as conn:
            done = catalog.seal_plaintext(conn, box)
        sealed += done
        if done == 0:
            break
    if sealed:
        logger.info("sealed tool variables stored in plaintext by an earlier release", extra={"sealed": sealed})
    return sealed


def lambda_runtime() -> Runtime:
    """A Lambda execution environment's runtime: its settings, one connection reused across
    invocations (module scope), no migrations (the migration custom resource ran them)."""
    return start(load_settings(), migrate_schema=False)


# -- the adapters -------------------------------------------------------------------------------------------


def key_source(settings: Settings) -> KeySource:
    if settings.llm.keys_secret_arn:
        from o.aws.secrets import SecretsManagerKeySource

        return SecretsManagerKeySource(settings.llm.keys_secret_arn, settings.llm.keys_cache_s)
    return SettingsKeySource(settings.keys)


def llm_options(settings: Settings, outbound: OutboundPolicy) -> ClientOptions:
    """How model calls are made; with the Bedrock adapter (boto3, the process's AWS credentials) when
    the settings name a Bedrock region."""
    from o.llm.client import ClientOptions

    options = ClientOptions.from_settings(settings.llm, outbound)
    region = settings.llm.bedrock_region
    if region:
        from o.aws.bedrock import builder

        options = replace(options, adapters=(("bedrock", builder(region)),))
    return options


def outbound_policy(settings: Settings) -> OutboundPolicy:
    """The one policy every outbound call of this process obeys (loopback allowed locally, not on AWS)."""
    return OutboundPolicy.from_settings(settings.outbound, settings.runtime)


def sandbox(settings: Settings) -> Sandbox:
    config = settings.sandbox
    if config.uses_lambda:
        from o.aws.sandbox import LambdaSandbox

        assert config.function_name
        return LambdaSandbox(config.function_name, region_name=config.region, max_wall_seconds=config.max_wall_seconds)
    return LocalProcessSandbox(workdir_root=config.workdir, isolate=config.isolate, allow_network=config.allow_network)


def key_file(settings: Settings) -> Path:
    return settings.secrets.key_file or settings.data_dir / "secrets.key"


def secret_box(settings: Settings) -> SecretBox:
    """What seals the tool secrets: KMS data keys when a KMS key is configured (AWS), else the key file."""
    if settings.secrets.kms_key_id:
        from o.aws.kms import KmsKeyWrapper

        return SecretBox(KmsKeyWrapper(settings.secrets.kms_key_id))
    if settings.runtime == "lambda":
        # a Lambda's files do not outlive it: a key file there would lose every secret it sealed
        return SecretBox(
            Unconfigured(f"tool secrets on Lambda need a KMS key: set {env_name('secrets', 'kms_key_id')}")
        )
    return SecretBox(KeyFile(key_file(settings)))


def state_machine(arn: str | None) -> Executions:
    from o.aws.stepfunctions import StateMachine

    return StateMachine(arn)


def alias_router(settings: Settings) -> AliasRouter | None:
    if not settings.evolution.step_function_name:
        return None
    from o.aws.alias import LambdaAlias

    return LambdaAlias(None, settings.evolution.step_function_name, settings.evolution.step_alias)


def decision_events(settings: Settings) -> DecisionEvents:
    """Where evolution decisions are told: an EventBridge bus when one is configured (AWS), else the owner's
    webhook through the outbound policy."""
    if settings.evolution.event_bus:
        from o.aws.events import EventBridgeEvents

        return EventBridgeEvents(None, settings.evolution.event_bus)
    from o.evolution.notify import Webhook

    return Webhook(outbound_policy(settings))


def outcome_metrics() -> Any:
    """The CloudWatch adapter: :class:`OutcomeMetrics` for the agent step, ``VersionMetrics`` for canaries."""
    from o.aws.metrics import CloudWatchOutcomes

    return CloudWatchOutcomes()


# -- the services -------------------------------------------------------------------------------------------


def agent_engine(
    settings: Settings,
    db: Database,
    *,
    keys: KeySource | None = None,
    secrets: SecretBox | None = None,
    in_state_machine: bool = False,
    mcp: McpServers | None = None,
    embedders: Embedders | None = None,
) -> Engine:
    """The agent loop's engine of this process, with every adapter the settings name.

    ``in_state_machine``: this is the agent-step Lambda, which the agent-loop state machine invokes: it
    releases executions waiting on an approval through Step Functions, without knowing the machine's ARN.
    """
    # imported here: the API builds its engine only when a request first needs it (api_services)
    from o.agent.engine import Engine, llm_factory
    from o.agent.prompt import default_cache
    from o.agent.runner import StateMachineLauncher
    from o.agent.tools import SandboxExecutor
    from o.evolution.routing import CanaryRouter
    from o.tools.web.tools import WebTools

    keys = keys or key_source(settings)
    outbound = outbound_policy(settings)
    secrets = secrets or secret_box(settings)
    tool_sandbox = sandbox(settings)
    web = WebTools.from_settings(settings, tool_sandbox, outbound, keys)
    engine = Engine(
        db,
        llm_factory(keys, llm_options(settings, outbound)),
        tools=SandboxExecutor(db, tool_sandbox, secrets, web, mcp=mcp or mcp_servers(settings, db, secrets)),
        settings=settings.agent,
        prompts=default_cache,
        embedders=embedders or Embedders.from_settings(keys, settings.embedding, settings.llm, outbound),
        revisions=CanaryRouter(settings.canary_evolution),
    )
    if settings.agent.state_machine_arn or in_state_machine:
        engine.remote = StateMachineLauncher(db, state_machine(settings.agent.state_machine_arn))
    return engine


def evolution_deps(settings: Settings, engine: Engine, **overrides: Any) -> loop.EvolutionDeps:
    from o.evolution import loop

    router = alias_router(settings)
    values: dict[str, Any] = {
        "policy": settings.evolution,
        "router": router,
        "metrics": outcome_metrics() if router is not None else None,
        "executions": state_machine(arn) if (arn := settings.evolution.state_machine_arn) else None,
        "events": decision_events(settings),
    }
    values.update(overrides)
    return loop.EvolutionDeps(engine.db, engine, **values)


def evolution_of(rt: Runtime) -> loop.EvolutionDeps:
    """The evolution's dependencies for this process, on its own agent engine."""
    return evolution_deps(rt.settings, agent_engine(rt.settings, rt.db))


def api_services(settings: Settings, db: Database, *, secrets: SecretBox | None = None) -> Services:
    # imported here: the agent-step and evolution Lambdas never load the web framework
    from o.api.deps import Lazy, Services
    from o.runtime.files import file_services, ingestion, transfer_services

    keys = key_source(settings)
    secrets = secrets or secret_box(settings)
    # built on first use (Lazy): the MCP client (its pool shared with the engine), the engine, the evolution
    mcp = Lazy(lambda: mcp_servers(settings, db, secrets))
    embedders = Embedders.from_settings(keys, settings.embedding, settings.llm, outbound_policy(settings))
    files = file_services(settings, ingestion(settings, db, embedders))
    evolution = Lazy(
        lambda: evolution_deps(
            settings, agent_engine(settings, db, keys=keys, secrets=secrets, mcp=mcp.get(), embedders=embedders)
        )
    )
    return Services(
        evolution,
        sandbox(settings),
        secrets,
        Lazy(lambda: model_catalog(settings, keys)),
        files=files,
        mcp=mcp,
        transfers=transfer_services(settings, db),
        database=db,
    )


def mcp_servers(settings: Settings, db: Database, secrets: SecretBox) -> McpServers:
    """MCP servers and their pooled connections (one pool per process: the API and the agent loop share
    it); stdio servers only where the settings allow them (locally by default, not on AWS)."""
    from o.tools.mcp import pool, servers

    outbound, config = outbound_policy(settings), settings.mcp
    limits = servers.McpLimits(config.stdio_allowed(settings.runtime), config.call_timeout_s, config.max_result_chars)
    connections = pool.McpPool(outbound, connect_timeout_s=config.connect_timeout_s)
    return servers.McpServers(db, secrets, connections, outbound, limits)


def model_catalog(settings: Settings, keys: KeySource | None = None) -> ModelCatalog:
    """What GET /v1/models lists: the providers these settings configure (an Ollama on this machine
    is looked for only locally)."""
    from o.llm.catalog import ModelCatalog

    return ModelCatalog.from_settings(
        settings.llm,
        settings.embedding,
        keys or key_source(settings),
        outbound_policy(settings),
        local=settings.runtime != "lambda",
    )


def api_app(settings: Settings, services: Services) -> FastAPI:
    from o.api.app import create_app

    return create_app(
        services,
        max_body_bytes=settings.max_body_bytes,
        max_agent_file_bytes=settings.max_agent_file_bytes,
        max_bundle_bytes=settings.max_bundle_bytes,
        # a Lambda serves one request after its cold start: it imports only the routers that needs
        routes_on_demand=settings.runtime == "lambda",
    )


def step_outcomes(settings: Settings) -> OutcomeMetrics | None:
    """Where the agent-step Lambda reports finished turns per version (only while canaries can exist)."""
    return outcome_metrics() if settings.evolution.step_function_name else None


# -- `o serve` ---------------------------------------------------------------------------------------------


def local_services(rt: Runtime) -> Services:
    """The services of one `o serve` process, with the every-N-user-messages sleep-time trigger on its
    run ends unless sleep-time is off. Each serving process has its own: the trigger's check and the
    pass's own guard are in Postgres, so processes do not start a pass twice."""
    secrets = secret_box(rt.settings)
    if isinstance(secrets.wrapper, KeyFile):
        secrets.wrapper.ensure()  # made on the first start, so every worker finds the same key
    services = api_services(rt.settings, rt.db, secrets=secrets)
    if rt.settings.sleeptime.enabled:
        from o.evolution import sleeptime

        # every N user messages: checked when a run ends, on the trigger's own thread
        services.engine.on_run_end = sleeptime.RunEndTrigger(lambda: services.evolution, rt.settings.sleeptime)
    return services


def start_background(rt: Runtime, services: Services) -> None:
    """The work `o serve` does beside the API, in exactly ONE process however many serve requests
    (in AWS, Step Functions and EventBridge do it):

    - the embedded Postgres is supervised: restarted when it dies (every process's pool reconnects);
    - runs a previous process left mid-loop are finished from their durable state, in the
      background so serving starts at once;
    - the sleep-time scheduler (which also resumes undecided evolutions), unless sleep-time is off.
    """
    if rt.embedded is not None:
        # an operator's Postgres (O_DATABASE_URL) is the operator's to run
        from o.store.embedded import Supervisor

        rt.services.append(Supervisor(rt.embedded).start())
    from o.agent.runner import resume_stale
    from o.evolution import sleeptime

    engine = services.engine

    def resume() -> None:
        try:
            finished = resume_stale(engine.deps(), idle_s=0)
            if finished:
                logger.info("resumed runs left by a previous process", extra={"runs": len(finished)})
        except Exception:
            logger.exception("resuming stale runs failed")

    threading.Thread(target=resume, name="o-resume-runs", daemon=True).start()
    if rt.settings.sleeptime.enabled:
        rt.services.append(sleeptime.start_local_scheduler(services.evolution, rt.settings.sleeptime))
    if services.files.worker is not None:  # files uploaded to any process, and those left mid-way
        rt.services.append(services.files.worker.start())
    if services.transfers.worker is not None:  # bundle imports and exports a dead process left
        rt.services.append(services.transfers.worker.start())


def settle_heap(*, collect: bool = True) -> None:
    """Start-up is over: what it made (modules, routes, schemas: ~150k objects that live as long as the
    process) is moved out of the garbage collector's view. Otherwise every full collection under load
    rescans them all, freeing nothing, and those pauses are the API's tail latency.

    ``collect=False`` (a Lambda's cold start): no full collection first. It would cost ≈ 120 ms of the
    cold start to free the ≈ 1k objects start-up leaves as garbage, which stay frozen instead."""
    if collect:
        gc.collect()
    gc.freeze()
