"""The O stack: wires the capability constructs together and nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.agent_loop import AgentLoop, grant_task_response
from infra.api import Api, streaming_function
from infra.config import DeployConfig
from infra.database import Database, DatabaseOptions
from infra.evolution import Evolution, grant_agent_metrics, grant_decision_events
from infra.files import TIMEOUT as FILES_TIMEOUT
from infra.files import Files
from infra.migrations import Migrations
from infra.network import Network
from infra.observability import Observability, Watched
from infra.rollout import ALIAS_NAME, Rollout
from infra.service_function import (
    AssetFolders,
    ServiceFunction,
    acknowledge,
    function_assets,
    grant_bedrock,
    retention_days,
)
from infra.sleeptime import Sleeptime
from infra.tool_sandbox import ToolSandbox
from infra.tool_secrets import ToolSecrets
from o.config import env_name

API_HANDLER = "functions.api.handler.handler"
AGENT_STEP_HANDLER = "functions.agent_step.handler.handler"


class OStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        folders: AssetFolders,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        assets = function_assets(self, folders, retention_days(config.log_retention_days))
        network = Network(
            self,
            "Network",
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            interface_endpoints=config.interface_endpoints,
            log_retention=assets.log_retention,
            nat_instance_type=config.nat_instance_type if config.nat_instance else None,
            ipv6_egress=config.ipv6_egress,
        )
        database = Database(
            self,
            "Database",
            vpc=network.vpc,
            data_subnets=network.data_subnets,
            proxy_subnets=network.app_subnets,
            options=DatabaseOptions(
                profile=config.profile,
                postgres_version=config.postgres_version,
                aurora_version=config.aurora_postgres_version,
                instance_type=config.db_instance_type,
                storage_gib=config.db_storage_gib,
                multi_az=config.db_multi_az,
                deletion_protection=config.db_deletion_protection,
                db_name=config.db_name,
                # what a stack delete does to the data (o:dbRemovalPolicy); a kept database keeps its credentials
                removal_policy=config.db_removal,
                retain_secret=config.db_removal_policy == "retain",
                max_acu=config.db_max_acu,
                auto_pause=Duration.minutes(config.db_auto_pause_minutes),
            ),
            log_retention=assets.log_retention,
        )
        if not config.db_deletion_protection:
            acknowledge(
                database,
                ("AwsSolutions-RDS10", "off by default (o:dbDeletionProtection) so that a failed first deploy can "
                 "roll back, which deletes the instance; every delete leaves a final snapshot "
                 "(o:dbRemovalPolicy=snapshot), and the README says to turn it on once the stack is up"),
            )  # fmt: skip
        database.allow_from(network.function_security_group)
        tool_secrets = ToolSecrets(self, "ToolSecrets")
        migrations = Migrations(
            self,
            "Migrations",
            assets=assets,
            network=network.migrations,
            database=database,
            environment=tool_secrets.environment(),
        )

        # Filled by the operator after deploy (infra/README.md); "{}" is a placeholder, not a secret.
        # CloudFormation rewrites the value only when this template value changes, so keys put in
        # later survive every deploy.
        llm_keys = secretsmanager.Secret(
            self,
            "LlmKeys",
            description='O: LLM provider keys as JSON, e.g. {"OPENAI_API_KEY": "...", "ANTHROPIC_API_KEY": "..."}',
            secret_string_value=SecretValue.unsafe_plain_text("{}"),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            llm_keys,
            ("AwsSolutions-SMG4", "third-party LLM API keys are rotated at the provider by the operator; "
             "Secrets Manager has no rotation function for them"),
        )  # fmt: skip
        shared_env = {
            **database.environment(),
            **tool_secrets.environment(),
            env_name("llm", "keys_secret_arn"): llm_keys.secret_arn,
            # Amazon Bedrock in the stack's region, called with each function's own role (no keys)
            env_name("llm", "bedrock_region"): self.region,
            **({env_name("llm", "bedrock_models"): config.bedrock_models} if config.bedrock_models else {}),
            # web_search's provider (its key, if any, is in the LLM keys secret)
            **({env_name("web", "search_provider"): config.web_search_provider} if config.web_search_provider else {}),
            **({env_name("web", "search_url"): config.web_search_url} if config.web_search_url else {}),
        }

        sandbox = ToolSandbox(
            self, "ToolSandbox", assets=assets, network=network.sandbox, reserved_concurrency=config.sandbox_concurrency
        )
        shared_env[env_name("sandbox", "function_name")] = sandbox.function.function_arn

        agent_step = ServiceFunction(
            self,
            "AgentStep",
            assets=assets,
            handler=AGENT_STEP_HANDLER,
            description="O agent step: one LLM call and its tool calls, driven by the agent-loop state machine",
            service="o-agent-step",
            memory_mb=1024,
            timeout=Duration.minutes(5),
            environment=shared_env,
            network=network.functions,
        )
        rollout = Rollout(self, "Rollout", assets=assets)
        step_live = rollout.runtime_routed("AgentStep", agent_step.function)
        agent_loop = AgentLoop(
            self,
            "AgentLoop",
            step_alias=step_live,
            iteration_cap=config.iteration_cap,
            log_retention=assets.log_retention,
            approval_timeout_seconds=config.approval_timeout_seconds,
        )
        # the machine invokes the alias, which exists once the deploy's custom resource made it
        agent_loop.node.add_dependency(rollout.alias_resources["AgentStep"])
        loop_env = {env_name("agent", "state_machine_arn"): agent_loop.state_machine.state_machine_arn}

        evolution = Evolution(
            self,
            "Evolution",
            assets=assets,
            network=network.functions,
            environment=shared_env,
            step_function=agent_step.function,
        )
        sleeptime = Sleeptime(
            self,
            "Sleeptime",
            assets=assets,
            network=network.functions,
            # No agent-loop machine: a sleep-time pass never starts an agent run (like the evolution worker's
            # shadow runs, anything it ran would run in-process).
            environment={**shared_env, **evolution.environment()},
            schedule_expression=config.sleeptime_schedule,
        )

        files = Files(
            self,
            "Files",
            assets=assets,
            network=network.functions,
            environment=shared_env,
            database_environment=database.environment(),
        )
        api_env = {
            **shared_env,
            **files.environment(),
            **loop_env,
            **evolution.environment(),
            env_name(None, "max_body_bytes"): str(config.max_body_bytes),
        }
        api_function = ServiceFunction(
            self,
            "ApiFunction",
            assets=assets,
            handler=API_HANDLER,
            description="O API: Letta v1 REST API (FastAPI + Mangum)",
            service="o-api",
            memory_mb=1024,
            # API Gateway gives up after 29 s.
            timeout=Duration.seconds(29),
            environment=api_env,
            network=network.functions,
        )
        # The same app with streamed responses (infra/api.py): it may do what the API function may, and
        # also runs streamed runs' steps itself (tools, tool secrets) as the agent-step function does.
        api_stream = streaming_function(
            self, "ApiStreamFunction", assets=assets, environment=api_env, network=network.functions
        )
        api_live = rollout.live("Api", api_function.function)
        api = Api(
            self,
            "Api",
            handler=api_live,
            stream_handler=api_stream.function,
            name=f"{self.stack_name}-api",
            throttle_rate=config.throttle_rate,
            throttle_burst=config.throttle_burst,
            log_retention=assets.log_retention,
        )

        workers = (api_function, api_stream, agent_step, sleeptime.service, evolution.service, files.service)
        for service in workers:
            database.grant_connect(service.function)
            # Powertools Parameters reads the value and nothing else (no DescribeSecret).
            iam.Grant.add_to_principal(
                grantee=service.function, actions=["secretsmanager:GetSecretValue"], resource_arns=[llm_keys.secret_arn]
            )
            grant_bedrock(service)
            # New code must not take traffic before its schema exists.
            service.node.add_dependency(migrations)
        # The ingest queue's dead letters: the database, and nothing of the LLM keys, Bedrock or tools.
        database.grant_connect(files.dead_letter_service.function)
        files.dead_letter_service.node.add_dependency(migrations)
        # Who runs user tools: the agent loop, `POST /v1/tools/run`, and an evolution's shadow runs. Sleep-time
        # passes use only the built-in memory tools; its function keeps the sandbox's name so a tool call
        # there would be refused by IAM, never run in-process next to the database credentials.
        for service in (api_function, api_stream, agent_step, evolution.service):
            sandbox.grant_invoke(service.function)
        # Starting runs, answering approvals (the step releases a wait whose decision came first).
        for service in (api_function, api_stream):
            agent_loop.state_machine.grant_start_execution(service.function)
            grant_task_response(service.function)
        grant_task_response(agent_step.function)
        # Evolutions: started by the API and sleep-time (and continued by the worker); the worker moves
        # the agent step's live alias for a canary and reads its metrics; the API withdraws a canary
        # when an evolution is stopped.
        for service in (api_function, api_stream, sleeptime.service, evolution.service):
            evolution.grant_start(service.function)
        # to the ServiceFunction: the grant's cdk-nag acknowledgment must cover its role
        rollout.grant_manage("AgentStep", evolution.service)
        for service in (api_function, api_stream):
            rollout.grant_withdraw("AgentStep", service)
        grant_agent_metrics(evolution.function)
        # who decides evolutions (the worker; the API when one is stopped or rejected) tells the owners
        for decider in (api_function.function, api_stream.function, evolution.function):
            grant_decision_events(self, decider)
        for service in (api_function, api_stream):
            files.grant_upload(service)
        # Tool secrets: the API seals what clients set, the migration seals what an earlier release
        # stored in plaintext; the functions that run tools open them. Nothing else may use the key.
        for sealer in (api_function.function, api_stream.function, migrations.service.function):
            tool_secrets.grant_seal(sealer)
        for opener in (agent_step.function, api_stream.function, evolution.function):
            tool_secrets.grant_open(opener)

        Observability(
            self,
            "Observability",
            functions={
                # Sending a message waits on the agent loop (up to O_AGENT_SYNC_WAIT_S, 20 s), so the
                # API's p99 is bounded by LLM time, not by the fast CRUD routes.
                "Api": Watched(api_live, Duration.seconds(20)),
                "AgentStep": Watched(agent_step.function, Duration.seconds(120), alias=ALIAS_NAME),
                "ToolSandbox": Watched(sandbox.function, Duration.seconds(30)),
                "Sleeptime": Watched(sleeptime.function, Duration.minutes(10)),
                "Evolution": Watched(evolution.function, Duration.minutes(10)),
                # a bundle import runs in invocations of up to its timeout by design: only a timeout is over budget
                "Ingest": Watched(files.function, FILES_TIMEOUT),
                "DeadLetters": Watched(files.dead_letter_service.function, Duration.minutes(1)),
            },
            rest_api=api.rest_api,
            state_machines={"AgentLoop": agent_loop.state_machine, "EvolutionLoop": evolution.state_machine},
            # an upload or an agent import that ended in error because its ingest runs kept failing
            dead_letter_queues={"Ingest": files.dead_letters},
            essential_only=config.economy,
        )

        self.api_url = api.url
        self.api_stream = api_stream
        self.state_machine = agent_loop.state_machine
        self.rollout = rollout
        CfnOutput(self, "ApiUrl", value=api.url)
        CfnOutput(self, "StreamUrl", value=api.stream_url or api.url)
        CfnOutput(self, "AgentStateMachineArn", value=agent_loop.state_machine.state_machine_arn)
        CfnOutput(self, "EvolutionStateMachineArn", value=evolution.state_machine.state_machine_arn)
        CfnOutput(self, "LlmKeysSecretArn", value=llm_keys.secret_arn)
        CfnOutput(self, "MigrateFunctionName", value=migrations.service.function.function_name)
