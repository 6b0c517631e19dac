"""Everything the loop needs, built once per process by the composition root (:mod:`o.runtime`).

Locally the engine runs loops in-process (:class:`~o.agent.runner.LocalLauncher`); in AWS the
composition root gives it a :class:`~o.agent.runner.StateMachineLauncher` instead, so the API
starts Step Functions executions. Tests build an engine with their own LLM key source and client
options pointing at local servers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from o.agent.context import ContextPolicy
from o.agent.prompt import PromptCache, default_cache
from o.agent.runner import LocalLauncher, RunLauncher
from o.agent.serving import CurrentRevision, RevisionRouter
from o.agent.step import StepDeps
from o.agent.tools import ToolExecutor
from o.config import AgentSettings
from o.errors import InvalidInput
from o.llm.client import ClientOptions, LLMClient, LLMError
from o.llm.config import LLMConfig
from o.llm.keys import KeySource, NoKeys
from o.llm.providers import check_available, client_for, route_for
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource, EmbeddingConfig
from o.store.db import Database


@dataclass(frozen=True, eq=False)
class LLMFactory:
    """Builds the client for an agent's config with this process's keys and options; the options also
    say which endpoints a config may name, which :meth:`Engine.check_configs` checks when one is saved."""

    keys: KeySource | None = None
    options: ClientOptions | None = None

    def __call__(self, config: LLMConfig) -> LLMClient:
        return client_for(config, self.keys, self.options)


def llm_factory(keys: KeySource | None = None, options: ClientOptions | None = None) -> LLMFactory:
    return LLMFactory(keys, options)


@dataclass
class Engine:
    db: Database
    llm: Callable[[LLMConfig], LLMClient]
    tools: ToolExecutor | None = None
    settings: AgentSettings = field(default_factory=AgentSettings)
    prompts: PromptCache = field(default_factory=lambda: default_cache)
    embedders: EmbedderSource = LOCAL_EMBEDDERS
    # which revision serves a run: the agent's own, or (o.evolution.routing) a canary's candidate
    revisions: RevisionRouter = field(default_factory=CurrentRevision)
    # Given to every local run's loop: called with the run id when it ends (o serve: the sleep-time trigger).
    on_run_end: Callable[[str], None] | None = None
    # None: the loop runs in this process; AWS: the agent-loop state machine
    remote: RunLauncher | None = None
    _local: LocalLauncher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._local = LocalLauncher(self.deps)

    @property
    def launcher(self) -> RunLauncher:
        return self.remote if self.remote is not None else self._local

    def check_configs(
        self, llm_config: dict[str, Any] | None, embedding_config: dict[str, Any] | None, *, chosen: bool = True
    ) -> None:
        """Refuse (4xx), before an agent is saved with them, configs whose calls this process would refuse:
        an llm_config or embedding_config endpoint the operator does not allow (or the outbound policy
        forbids), a local embedding model or size it does not serve, and (when the model was ``chosen``,
        not O's default) a provider this server has no key or adapter for. Nothing is called."""
        if llm_config is not None:
            try:
                config = LLMConfig.model_validate(llm_config)
            except ValueError as exc:
                raise InvalidInput(f"llm_config is not usable: {exc}", field="llm_config") from None
            # an engine built around another client factory (a test's scripted model) has no endpoint rules
            if isinstance(self.llm, LLMFactory) and not chosen:
                route_for(config, self.llm.options or ClientOptions())
            elif isinstance(self.llm, LLMFactory):
                try:
                    check_available(config, self.llm.keys or NoKeys(), self.llm.options or ClientOptions())
                except LLMError as exc:
                    raise InvalidInput(f"model {config.handle or config.model!r}: {exc}", field="model") from None
        if embedding_config is not None:
            self.embedders.check(EmbeddingConfig.from_agent(embedding_config))

    def deps(self, **overrides: Any) -> StepDeps:
        policy = ContextPolicy(self.settings.summarize_threshold, self.settings.summarize_target)
        values: dict[str, Any] = {
            "db": self.db,
            "llm": self.llm,
            "tools": self.tools,
            "prompts": self.prompts,
            "context": policy,
            "embedders": self.embedders,
            "revisions": self.revisions,
            "on_run_end": self.on_run_end,
        }
        values.update(overrides)
        return StepDeps(**values)
