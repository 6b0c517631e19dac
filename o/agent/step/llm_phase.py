"""Phase 1 of a step: call the LLM, then store the step and its reply in ONE transaction.

Replaying the phase for a step that exists never calls the LLM again (:func:`o.agent.step.state.replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from o.agent import context as ctx_window
from o.agent import conversations, serving, transcript
from o.agent.events import MessageStored, TokenDelta
from o.agent.step import conversation
from o.agent.step.calls import rule_history
from o.agent.step.contract import Outcome, step_id_for
from o.agent.step.deps import StepDeps, utcnow
from o.agent.step.reply import Offer, ReplyPlan, add_usage, offer, plan_reply, refusal
from o.agent.step.rows import reply_id, reply_message, step_row
from o.agent.step.state import enter, fail_cleanly, finish_run, replay
from o.agent.tool_rules import ToolRules
from o.agent.tools import agent_tools
from o.errors import OError
from o.llm import pricing
from o.llm.client import LLMClient, LLMError
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ChatResponse, Completed, Usage
from o.observability import logger
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn
from o.store.records import NextAction, Run, RunStatus, StopReason


@dataclass
class _Prepared:
    """What the LLM call is made from, read in the phase's first transaction."""

    run: Run
    agent: dict[str, Any]
    iteration: int
    system: str
    rows: list[dict[str, Any]]
    rules: ToolRules
    offer: Offer

    @property
    def step_id(self) -> str:
        return step_id_for(self.run.id, self.iteration)


@dataclass(frozen=True)
class _Reply:
    response: ChatResponse
    # a summary call made to fit the context window counts towards the step
    extra_usage: Usage
    # time spent waiting on the provider (the summary call included)
    llm_ms: float
    # what was asked of the provider (its shape, not the prompt's text: that is in the messages)
    asked: dict[str, Any]


def llm_phase(deps: StepDeps, run_id: str, iteration: int | None = None) -> Outcome:
    """Phase 1 of step ``iteration``; None: of the step the run stands at (what ``advance`` does)."""
    started_at = utcnow()
    prepared = _prepare(deps, run_id, iteration)
    if isinstance(prepared, Outcome):
        return prepared
    client = _client(deps, prepared)
    if isinstance(client, Outcome):
        return client
    reply = _ask(deps, prepared, *client)
    if isinstance(reply, Outcome):
        return reply
    deps.inject("after_llm")
    return _store_reply(deps, prepared, reply, started_at)


def _prepare(deps: StepDeps, run_id: str, iteration: int | None) -> _Prepared | Outcome:
    """What the LLM call is made from. Most steps only read (the first one also stores its revision
    decision, one statement): in autocommit, without a BEGIN and a COMMIT, two round trips fewer. A
    step that must write more first (a refusal, a queued run's claim, an agent's first revision) does
    it all in one transaction, reading again."""
    with deps.db.read() as conn:
        prepared = _prepare_in(deps, conn, run_id, iteration, writable=False)
    if prepared is not None:
        return prepared
    with deps.db.transaction() as conn:
        prepared = _prepare_in(deps, conn, run_id, iteration, writable=True)
    assert prepared is not None
    return prepared


def _prepare_in(
    deps: StepDeps, conn: Conn, run_id: str, iteration: int | None, *, writable: bool
) -> _Prepared | Outcome | None:
    """None (only when not ``writable``): the step must write before it asks the LLM."""
    entered = enter(conn, run_id, iteration, finished_at=NextAction.TOOLS, with_context=True)
    if isinstance(entered, Outcome):
        return entered
    run, agent = entered.run, entered.agent
    if entered.step is not None:
        return replay(conn, run, entered.step)
    refused = refusal(run, entered.iteration, agent_exists=agent is not None)
    if not writable and (refused is not None or conversation.queued(run)):
        return None
    if refused is not None:
        return finish_run(conn, run, refused[0], error=refused[1])
    assert agent is not None
    rows = entered.context
    if conversation.queued(run):
        claimed = conversation.claim(conn, run)
        if claimed is None:  # another run of the agent goes first
            return Outcome(run.id, entered.iteration, NextAction.STEP, queued=True)
        run, rows = claimed, None  # its input entered the context: read it again
    # Which revision serves this run: decided on its first step (which also marks the run running),
    # the same for every later one. In autocommit the decision is one UPDATE, its own transaction,
    # stored before the LLM is asked: a first step that fails still counts for its revision.
    if not writable and serving.undecided(run) and serving.decide_writes(agent):
        return None
    run, agent = serving.serve_run(conn, deps.revisions, run, agent, version=deps.version)
    prompt = deps.prompts.get(conn, agent)
    agent = conversations.effective_agent(conn, run, agent)
    if rows is None:
        rows = message_store.in_context(conn, agent["id"], run.conversation_id)
    tools = agent_tools(agent, agent.pop("tools_json"))
    rules = ToolRules.parse(agent["tool_rules"])
    # without rules the calls made so far change nothing, so they are not read
    history = rule_history(message_store.tool_results(conn, run_id)) if rules.active else []
    offered = offer(tools, rules, history)
    return _Prepared(run, agent, entered.iteration, prompt.text, rows, rules, offered)


def _client(deps: StepDeps, prepared: _Prepared) -> tuple[LLMConfig, LLMClient] | Outcome:
    try:
        config = LLMConfig.model_validate(prepared.agent["llm_config"])
        return config, deps.llm(config)
    except LLMError as exc:  # e.g. no API key for the provider
        return _fail(deps, prepared.run, StopReason.LLM_API_ERROR, exc.message)
    except (ValueError, OError) as exc:
        return _fail(deps, prepared.run, StopReason.ERROR, f"the agent's llm_config is unusable: {exc}")


def _ask(deps: StepDeps, prepared: _Prepared, config: LLMConfig, client: LLMClient) -> _Reply | Outcome:
    """The LLM's reply, after summarising the oldest messages when the prompt does not fit."""
    specs = [t.spec() for t in prepared.offer.tools]
    rows = prepared.rows
    extra_usage = Usage()
    summary_ms = 0.0
    force = False
    while True:
        try:
            rows, summary = ctx_window.ensure_fits(
                deps.db,
                client,
                config,
                prepared.agent,
                prepared.system,
                rows,
                specs,
                deps.context,
                force=force,
                conversation_id=prepared.run.conversation_id,
            )
            if summary is not None:
                extra_usage, summary_ms = extra_usage + summary[0], summary_ms + summary[1]
            request = ChatRequest(
                messages=[ChatMessage.system(prepared.system), *transcript.to_chat(rows)],
                tools=specs,
                tool_choice=prepared.offer.tool_choice,
            )
            response = _call(deps, client, request, prepared.run.id, prepared.step_id)
            return _Reply(response, extra_usage, response.latency_ms + summary_ms, _asked(config, request))
        except ctx_window.CannotFit as exc:
            return _fail(deps, prepared.run, StopReason.CONTEXT_WINDOW_OVERFLOW, str(exc), status=RunStatus.FAILED)
        except LLMError as exc:
            if exc.context_overflow and not force:
                # Our count said it fits but the provider disagrees: summarise now and try once more.
                force = True
                continue
            logger.warning(
                "llm call failed",
                extra={"run_id": prepared.run.id, "iteration": prepared.iteration, "error": exc.message},
            )
            return _fail(deps, prepared.run, StopReason.LLM_API_ERROR, exc.message)


def _call(deps: StepDeps, client: LLMClient, request: ChatRequest, run_id: str, step_id: str) -> ChatResponse:
    if not (deps.stream_tokens and deps.emit is not None):
        return client.chat(request)
    started_at = deps.clock()
    for event in client.stream(request):
        if isinstance(event, Completed):
            return event.response
        deps.report(TokenDelta(reply_id(step_id), step_id, run_id, started_at, event))
    raise LLMError("the stream ended without a final response", provider=client.provider, retryable=True)


def _fail(deps: StepDeps, run: Run, stop_reason: StopReason, error: str, *, status: RunStatus | None = None) -> Outcome:
    """End the run failed: the step could not call the LLM."""
    return fail_cleanly(deps.db, run.id, stop_reason, error, status=status)


def _asked(config: LLMConfig, request: ChatRequest) -> dict[str, Any]:
    return {
        "provider": config.model_endpoint_type,
        "model": config.model,
        "messages": len(request.messages),
        "roles": [m.role for m in request.messages],
        "tools": [t.name for t in request.tools],
        "tool_choice": request.tool_choice,
    }


def _trace(reply: _Reply, usage: Usage, cost: float | None) -> dict[str, Any]:
    """The step's provider trace: the request's shape and the provider's answer."""
    response = reply.response
    return {
        "request": reply.asked,
        "response": {
            "id": response.id,
            "model": response.model,
            "finish_reason": response.finish_reason,
            "content": response.content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            "cost_usd": cost,
        },
        "llm_ms": round(reply.llm_ms, 3),
    }


def _store_reply(deps: StepDeps, prepared: _Prepared, reply: _Reply, started_at: datetime) -> Outcome:
    """The step row, its reply and the run's next action, in one transaction."""
    iteration, step_id = prepared.iteration, prepared.step_id
    response = reply.response
    plan = plan_reply(step_id, response.tool_calls, prepared.rules, {t.name for t in prepared.offer.tools})
    usage = response.usage + reply.extra_usage
    tokens = (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)
    cost = pricing.cost_usd(reply.asked["provider"], response.model, *tokens)
    step = step_row(
        prepared.run, step_id, iteration, plan, model=response.model, usage=usage, llm_ms=reply.llm_ms, now=utcnow()
    )
    step.update(started_at=started_at, cost_usd=cost, trace=_trace(reply, usage, cost))
    message_row = reply_message(prepared.run, step_id, plan, response.content)
    unraced = _unraced(prepared, plan, usage)
    if unraced is None:
        with deps.db.transaction() as conn:
            outcome, message = _store_carefully(conn, prepared, plan, usage, step, message_row)
    else:
        changes, outcome = unraced
        with deps.db.statement() as conn:
            message = step_store.store_reply(conn, prepared.run, step, message_row, changes)
        if message is None:  # raced: nothing was written
            with deps.db.transaction() as conn:
                outcome, message = _store_carefully(conn, prepared, plan, usage, step, message_row)
    if message is not None:
        deps.report(MessageStored(message))
    return outcome


def _unraced(prepared: _Prepared, plan: ReplyPlan, usage: Usage) -> tuple[dict[str, Any], Outcome] | None:
    """(the run's changes, the outcome) when the step is stored as the phase read the run, which is the usual
    case (one statement: :func:`o.store.steps.store_reply`); None when the reply ends the run (which
    records its outcome too) or a cancel was asked for: then it is stored a statement at a time."""
    run, iteration = prepared.run, prepared.iteration
    if plan.next_action == NextAction.DONE or run.cancel_requested:
        return None
    changes: dict[str, Any] = {"usage": add_usage(run.usage, usage, steps=1), "iteration": iteration}
    if plan.next_action == NextAction.APPROVAL:
        changes.update(next_action=NextAction.APPROVAL, stop_reason=StopReason.REQUIRES_APPROVAL)
        return changes, Outcome(run.id, iteration, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL)
    changes.update(next_action=NextAction.TOOLS)
    return changes, Outcome(run.id, iteration, NextAction.TOOLS)


def _store_carefully(
    conn: Conn, prepared: _Prepared, plan: ReplyPlan, usage: Usage, step: dict[str, Any], message_row: dict[str, Any]
) -> tuple[Outcome, dict[str, Any] | None]:
    """The step, its reply and the run's next action a statement at a time, deciding on the run as locked."""
    run_id, iteration = prepared.run.id, prepared.iteration
    run = run_store.get(conn, run_id, for_update=True)
    assert run is not None
    if run.cancel_requested:
        return finish_run(conn, run, StopReason.CANCELLED), None
    if step_store.insert(conn, step) is None:  # another worker stored this step first; its reply wins
        existing = step_store.by_index(conn, run_id, iteration)
        assert existing is not None
        return replay(conn, run, existing), None
    [message] = message_store.insert_many(conn, [message_row])
    changes: dict[str, Any] = {"usage": add_usage(run.usage, usage, steps=1), "iteration": iteration}
    if plan.next_action == NextAction.DONE:
        autoclear = prepared.agent.get("message_buffer_autoclear")
        return finish_run(conn, run, StopReason.END_TURN, extra=changes, autoclear=autoclear), message
    if plan.next_action == NextAction.APPROVAL:
        run_store.update(
            conn,
            run_id,
            {**changes, "next_action": NextAction.APPROVAL, "stop_reason": StopReason.REQUIRES_APPROVAL},
        )
        return Outcome(run_id, iteration, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL), message
    run_store.update(conn, run_id, {**changes, "next_action": NextAction.TOOLS})
    return Outcome(run_id, iteration, NextAction.TOOLS), message
