"""What a step needs from the process that runs it: the database, the LLM, the sandbox, and hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from o.agent import context as ctx_window
from o.agent import serving
from o.agent.events import StepEvent
from o.agent.prompt import PromptCache, default_cache
from o.agent.tools import ToolExecutor
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource
from o.store.db import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepDeps:
    db: Database
    # Builds the client for an agent's LLM config (``o.llm.providers.client_for`` in production).
    llm: Callable[[LLMConfig], LLMClient]
    tools: ToolExecutor | None = None
    clock: Callable[[], datetime] = utcnow
    prompts: PromptCache = field(default_factory=lambda: default_cache)
    context: ctx_window.ContextPolicy = field(default_factory=ctx_window.ContextPolicy)
    # Receives each stored message (and token delta) as it is produced: the SSE stream.
    emit: Callable[[StepEvent], None] | None = None
    stream_tokens: bool = False
    # Test hook: called at named points ("after_llm", "before_tool_commit", "after_tool") to inject crashes.
    fault: Callable[[str], None] | None = None
    # The Lambda version executing this step (agent-step Lambda): recorded on the run's first step, so
    # its outcome is reported under the version that decided its revision.
    version: str | None = None
    # Embeds archival and recall memory for the built-in tools (the process's key source and settings).
    embedders: EmbedderSource = LOCAL_EMBEDDERS
    # Which revision serves a run: the agent's own, or (o.evolution.routing) a canary's candidate.
    revisions: serving.RevisionRouter = field(default_factory=serving.CurrentRevision)
    # Called with the run id when the local loop (runner.drive) sees a run end; must return at once
    # (the sleep-time trigger only enqueues).
    on_run_end: Callable[[str], None] | None = None
    # How long one step action waits for a queued run's conversation before it reports "step" again
    # (the local loop then asks again; the state machine invokes the step again).
    queue_wait_s: float = 20.0

    def inject(self, point: str) -> None:
        """Give the fault hook its chance to "crash" the process at ``point``."""
        if self.fault is not None:
            self.fault(point)

    def report(self, event: StepEvent) -> None:
        if self.emit is not None:
            self.emit(event)
