"""Everything the loop needs, built once per process from the settings.

Locally the engine runs loops in-process; when ``O_AGENT_STATE_MACHINE_ARN`` is set (the
API Lambda in AWS) it starts Step Functions executions instead. Tests build an engine
with their own LLM key source and client options pointing at local servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from o.agent.context import ContextPolicy
from o.agent.prompt import PromptCache, default_cache
from o.agent.runner import LocalLauncher, RunLauncher, StepFunctionsLauncher
from o.agent.step import StepDeps
from o.agent.tools import ToolExecutor, default_executor
from o.llm.client import ClientOptions, LLMClient
from o.llm.config import LLMConfig
from o.llm.keys import KeySource
from o.llm.providers import client_for
from o.store.db import Database


class AgentSettings(BaseSettings):
    """The loop's settings (env prefix ``O_AGENT_``)."""

    model_config = SettingsConfigDict(env_prefix="O_AGENT_", extra="ignore", frozen=True)

    # Set in AWS: runs go through this state machine instead of an in-process loop.
    state_machine_arn: str | None = None
    default_max_steps: int = Field(default=50, ge=1, le=1000)
    summarize_threshold: float = Field(default=0.8, gt=0.1, le=1.0)
    summarize_target: float = Field(default=0.5, gt=0.05, lt=1.0)
    # How long a synchronous POST /messages waits on a state machine run before answering.
    sync_wait_s: float = Field(default=25.0, gt=0)


def llm_factory(
    keys: KeySource | None = None, options: ClientOptions | None = None
) -> Callable[[LLMConfig], LLMClient]:
    def build(config: LLMConfig) -> LLMClient:
        return client_for(config, keys, options)

    return build


@dataclass
class Engine:
    db: Database
    llm: Callable[[LLMConfig], LLMClient]
    tools: ToolExecutor | None = None
    settings: AgentSettings = field(default_factory=AgentSettings)
    prompts: PromptCache = field(default_factory=lambda: default_cache)
    sfn_client: Any = None
    # Given to every local run's loop: called with the run id when it ends (o serve: the sleep-time trigger).
    on_run_end: Callable[[str], None] | None = None
    launcher: RunLauncher = field(init=False)

    def __post_init__(self) -> None:
        if self.settings.state_machine_arn:
            self.launcher = StepFunctionsLauncher(self.settings.state_machine_arn, self.sfn_client, self.db)
        else:
            self.launcher = LocalLauncher(self.deps)

    def sfn(self) -> Any:
        """The Step Functions client (created on first use: local mode never loads boto3)."""
        if self.sfn_client is None:
            import boto3

            self.sfn_client = boto3.client("stepfunctions")
        return self.sfn_client

    def deps(self, **overrides: Any) -> StepDeps:
        policy = ContextPolicy(self.settings.summarize_threshold, self.settings.summarize_target)
        values: dict[str, Any] = {
            "db": self.db,
            "llm": self.llm,
            "tools": self.tools,
            "prompts": self.prompts,
            "context": policy,
            "on_run_end": self.on_run_end,
        }
        values.update(overrides)
        return StepDeps(**values)


def default_engine(db: Database) -> Engine:
    return Engine(db, llm_factory(), default_executor(db))
