"""One step of the agent loop, in durable phases. The Step Functions task and the local runner call this.

A step is split where a crash could otherwise lose or duplicate work:

* phase ``step`` (:func:`llm_phase`): call the LLM, then in ONE transaction store the step
  row (keyed by ``(run_id, step_index)``, with a derived id) and the assistant message with
  its tool calls, and move the run to ``tools`` (or ``approval``, or ``done``). Replaying
  it for a step that exists never calls the LLM again.
* phase ``tools`` (:func:`tools_phase`): each tool call's result is stored at
  ``(step_id, position)``; a built-in's memory edit commits in the same transaction as its
  result, so a replay skips calls that already have one and never applies an edit twice.
  The last result commits together with the step's completion and the decision whether the
  loop goes on (``request_heartbeat``, tool rules, ``max_steps``, cancel).

Which revision of the agent's configuration serves a run is decided on its first step and kept in
``runs.metadata`` (:mod:`o.agent.serving`): a canary's traffic split happens here, per run, and
the run's end records its outcome for that revision in the same transaction.

Every function takes its dependencies (:class:`StepDeps`) and returns an
:class:`Outcome` shaped like the state machine's contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from o.agent import context as ctx_window
from o.agent import serving, transcript
from o.agent.events import MessageStored, StepEvent, TokenDelta
from o.agent.prompt import PromptCache, default_cache
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import HEARTBEAT, AgentTool, ToolExecutor, agent_tools
from o.errors import NotFound, OError
from o.llm.client import LLMClient, LLMError
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ChatResponse, Completed, ToolCall, Usage
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource
from o.observability import logger
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn, Database
from o.tools import builtin

Next = Literal["step", "tools", "approval", "done", "failed"]
DEFAULT_MAX_STEPS = 50


class SimulatedCrash(BaseException):
    """Raised by fault injection to stand for the process dying; nothing in the loop catches it."""


@dataclass(frozen=True)
class Outcome:
    run_id: str
    iteration: int
    next: Next
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "iteration": self.iteration, "next": self.next, "stop_reason": self.stop_reason}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepDeps:
    db: Database
    # Builds the client for an agent's LLM config (``o.llm.providers.client_for`` in production).
    llm: Callable[[LLMConfig], LLMClient]
    tools: ToolExecutor | None = None
    clock: Callable[[], datetime] = _utcnow
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

    def _fault(self, point: str) -> None:
        if self.fault is not None:
            self.fault(point)

    def _emit(self, event: StepEvent) -> None:
        if self.emit is not None:
            self.emit(event)


def step_id_for(run_id: str, index: int) -> str:
    """The step's id, the same on every replay: the idempotency key of its messages."""
    return transcript.derived_id("step", run_id, index)


def execute(deps: StepDeps, run_id: str, iteration: int, action: str) -> Outcome:
    """Phase ``step`` (1) or ``tools`` (2) of step ``iteration`` (the step index) of the run."""
    if action == "step":
        return llm_phase(deps, run_id, iteration)
    if action == "tools":
        return tools_phase(deps, run_id, iteration)
    raise ValueError(f"unknown action {action!r}")


def advance(deps: StepDeps, run_id: str, action: str, counter: int = 0) -> Outcome:
    """One action of the state machine contract; what both Step Functions and the local runner call.

    Which step to work on comes from the run's durable state, not from the caller: a retried,
    duplicated or late invocation finds the work done and just reports what comes next. The
    returned ``iteration`` is ``counter`` advanced by the steps begun, a per-execution count the
    state machine compares with its cap (a continued execution starts again at 0).
    """
    if action not in ("step", "tools"):
        raise ValueError(f"unknown action {action!r}")
    try:
        outcome = llm_phase(deps, run_id) if action == "step" else tools_phase(deps, run_id)
    except NotFound:
        # the run (or its agent) was deleted meanwhile: end the loop instead of retrying forever
        return Outcome(run_id, counter, "failed", "error")
    # Only completing a step's tools moves the run on to a new step.
    return Outcome(run_id, counter + (1 if outcome.next == "step" else 0), outcome.next, outcome.stop_reason)


# -- shared helpers -------------------------------------------------------------------------------


def _request(run: dict[str, Any]) -> dict[str, Any]:
    return run.get("request") or {}


def _max_steps(run: dict[str, Any]) -> int:
    return int(_request(run).get("max_steps") or DEFAULT_MAX_STEPS)


def _finished(run: dict[str, Any]) -> Outcome | None:
    if run["next_action"] in ("done", "failed"):
        return Outcome(run["id"], run["iteration"], run["next_action"], run["stop_reason"])
    return None


def finish_run(
    conn: Conn,
    run: dict[str, Any],
    stop_reason: str,
    *,
    status: str | None = None,
    error: str | None = None,
    next_action: Next = "done",
    extra: dict[str, Any] | None = None,
) -> Outcome:
    if status is None:
        status = {"cancelled": "cancelled", "error": "failed", "llm_api_error": "failed"}.get(stop_reason, "completed")
    changes: dict[str, Any] = {
        **(extra or {}),
        "status": status,
        "stop_reason": stop_reason,
        "next_action": next_action,
        "completed_at": _utcnow(),
        "task_token": None,
    }
    if error is not None:
        changes["error"] = error
    run = run_store.update(conn, run["id"], changes)
    # the turn's outcome for its revision's canary figures, committed with the run's end
    serving.record_run(conn, run)
    return Outcome(run["id"], run["iteration"], next_action, stop_reason)


def _tool_rows(conn: Conn, run_id: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM messages WHERE run_id = %s AND role = 'tool' ORDER BY seq", (run_id,)).fetchall()


def _history(rows: list[dict[str, Any]]) -> list[Call]:
    """Tool calls made so far in this run with their outputs, in order (the tool rules' input)."""
    # A call rejected by a rule did not happen as far as the rules are concerned (as in Letta).
    return [Call(r["name"] or "", r["text"] or "") for r in rows if not (r["metadata"] or {}).get("rule_violation")]


def _add_usage(total: dict[str, Any], usage: Usage, steps: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": int(total.get("prompt_tokens", 0)) + usage.prompt_tokens,
        "completion_tokens": int(total.get("completion_tokens", 0)) + usage.completion_tokens,
        "total_tokens": int(total.get("total_tokens", 0)) + usage.total_tokens,
        "step_count": int(total.get("step_count", 0)) + steps,
    }


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _enter(
    conn: Conn, run_id: str, iteration: int | None, *, finished_at: str
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], int] | Outcome:
    """A phase's starting state (run, step, agent, iteration), or the Outcome to return at once: the
    run has ended, or an earlier attempt already finished this phase (the run stands at ``finished_at``)."""
    run, step, agent = run_store.load_state(conn, run_id, iteration)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    done = _finished(run)
    if done is not None:
        return done
    if iteration is None:
        iteration = int(run["iteration"])
        if run["next_action"] == finished_at:
            return Outcome(run_id, iteration, finished_at, None)
    return run, step, agent, iteration


# -- phase 1: the LLM call ------------------------------------------------------------------------


def llm_phase(deps: StepDeps, run_id: str, iteration: int | None = None) -> Outcome:
    """Phase 1 of step ``iteration``; None: of the step the run stands at (what :func:`advance` does)."""
    with deps.db.transaction() as conn:
        entered = _enter(conn, run_id, iteration, finished_at="tools")
        if isinstance(entered, Outcome):
            return entered
        run, existing, agent, iteration = entered
        if existing is not None:
            return _replayed(conn, run, existing)
        if run["cancel_requested"]:
            return finish_run(conn, run, "cancelled")
        if iteration >= _max_steps(run):
            return finish_run(conn, run, "max_steps")
        if agent is None:
            return finish_run(conn, run, "error", error="the agent was deleted")
        # Which revision serves this run: decided on its first step (which also marks the run running),
        # the same for every later one.
        run, agent = serving.serve_run(conn, deps.revisions, run, agent, version=deps.version)
        prompt = deps.prompts.get(conn, agent)
        rows = message_store.in_context(conn, agent["id"])
        tools = agent_tools(agent, agent.pop("tools_json"))
        rules = ToolRules.parse(agent["tool_rules"])
        # without rules the calls made so far change nothing, so they are not read
        history = _history(_tool_rows(conn, run_id)) if rules.active else []

    try:
        config = LLMConfig.model_validate(agent["llm_config"])
        client = deps.llm(config)
    except LLMError as exc:  # e.g. no API key for the provider
        with deps.db.transaction() as conn:
            return finish_run(conn, run, "llm_api_error", error=exc.message, next_action="failed")
    except (ValueError, OError) as exc:
        with deps.db.transaction() as conn:
            return finish_run(
                conn, run, "error", error=f"the agent's llm_config is unusable: {exc}", next_action="failed"
            )

    names = [t.name for t in tools]
    allowed = rules.allowed(names, history)
    offered = [t for t in tools if t.name in allowed]
    specs = [t.spec() for t in offered]
    forced = rules.forced(allowed, history)
    step_id = step_id_for(run_id, iteration)
    message_id = transcript.derived_id("message", step_id, 0)
    extra_usage = Usage()
    summary_ms = 0.0
    force = False
    while True:
        try:
            rows, summary = ctx_window.ensure_fits(
                deps.db, client, config, agent, prompt.text, rows, specs, deps.context, force=force
            )
            if summary is not None:
                extra_usage, summary_ms = extra_usage + summary[0], summary_ms + summary[1]
            request = ChatRequest(
                messages=[ChatMessage.system(prompt.text), *transcript.to_chat(rows)],
                tools=specs,
                tool_choice=forced or ("auto" if specs else "none"),
            )
            response = _call(deps, client, request, run, step_id, message_id)
            break
        except ctx_window.CannotFit as exc:
            with deps.db.transaction() as conn:
                run = run_store.get(conn, run_id, for_update=True) or run
                return finish_run(
                    conn,
                    run,
                    "context_window_overflow_in_system_prompt",
                    status="failed",
                    error=str(exc),
                    next_action="failed",
                )
        except LLMError as exc:
            if exc.context_overflow and not force:
                # Our count said it fits but the provider disagrees: summarise now and try once more.
                force = True
                continue
            logger.warning("llm call failed", extra={"run_id": run_id, "iteration": iteration, "error": exc.message})
            with deps.db.transaction() as conn:
                run = run_store.get(conn, run_id, for_update=True) or run
                return finish_run(conn, run, "llm_api_error", error=exc.message, next_action="failed")
    # Time spent waiting on the provider (the summary call included), recorded per step so
    # framework overhead can be told apart from model latency.
    llm_ms = response.latency_ms + summary_ms
    deps._fault("after_llm")
    return _store_reply(
        deps, run_id, iteration, step_id, message_id, agent, response, rules, offered, extra_usage, llm_ms
    )


def _call(
    deps: StepDeps, client: LLMClient, request: ChatRequest, run: dict[str, Any], step_id: str, message_id: str
) -> ChatResponse:
    if not (deps.stream_tokens and deps.emit is not None):
        return client.chat(request)
    started_at = deps.clock()
    for event in client.stream(request):
        if isinstance(event, Completed):
            return event.response
        deps._emit(TokenDelta(message_id, step_id, run["id"], started_at, event))
    raise LLMError("the stream ended without a final response", provider=client.provider, retryable=True)


def _store_reply(
    deps: StepDeps,
    run_id: str,
    iteration: int,
    step_id: str,
    message_id: str,
    agent: dict[str, Any],
    response: ChatResponse,
    rules: ToolRules,
    offered: list[AgentTool],
    extra_usage: Usage,
    llm_ms: float,
) -> Outcome:
    # A provider that sends no call id (or one already used in this reply) gets a stable one of ours.
    seen: set[str] = set()
    calls = []
    for position, c in enumerate(response.tool_calls, start=1):
        call_id = c.id if c.id and c.id not in seen else transcript.derived_id("call", step_id, position)
        seen.add(call_id)
        calls.append(ToolCall(call_id, c.name, c.arguments))
    offered_names = {t.name for t in offered}
    needs_approval = [c.id for c in calls if rules.requires_approval(c.name) and c.name in offered_names]
    usage = response.usage + extra_usage
    if not calls:
        status, next_action = "completed", "done"
    elif needs_approval:
        status, next_action = "awaiting_approval", "approval"
    else:
        status, next_action = "llm_done", "tools"
    with deps.db.transaction() as conn:
        run = run_store.get(conn, run_id, for_update=True)
        assert run is not None
        if run["cancel_requested"]:
            return finish_run(conn, run, "cancelled")
        inserted = step_store.insert(
            conn,
            {
                "id": step_id,
                "organization_id": run["organization_id"],
                "agent_id": run["agent_id"],
                "run_id": run_id,
                "step_index": iteration,
                "status": status,
                "model": response.model,
                "usage": {**_usage_dict(usage), "llm_ms": round(llm_ms, 3)},
                "tool_calls": transcript.stored_tool_calls(calls),
                "message_id": message_id,
                "next_action": "done" if not calls else None,
                "stop_reason": "end_turn" if not calls else None,
                "completed_at": _utcnow() if not calls else None,
            },
        )
        if inserted is None:  # another worker stored this step first; its reply wins
            existing = step_store.by_index(conn, run_id, iteration)
            assert existing is not None
            return _replayed(conn, run, existing)
        metadata: dict[str, Any] = {}
        if needs_approval:
            metadata["requires_approval"] = needs_approval
        if not calls:
            metadata["kind"] = "reply"
        [row] = message_store.insert_many(
            conn,
            [
                {
                    "id": message_id,
                    "organization_id": run["organization_id"],
                    "agent_id": run["agent_id"],
                    "role": "assistant",
                    "content": [{"type": "text", "text": response.content}] if response.content else [],
                    "text": response.content or "",
                    "tool_calls": transcript.stored_tool_calls(calls) or None,
                    "step_id": step_id,
                    "run_id": run_id,
                    "step_position": 0,
                    "metadata": metadata,
                }
            ],
        )
        changes: dict[str, Any] = {"usage": _add_usage(run["usage"] or {}, usage, steps=1), "iteration": iteration}
        if next_action == "done":
            outcome = finish_run(conn, run, "end_turn", extra=changes)
            run = {**run, **changes}
        elif next_action == "approval":
            run = run_store.update(
                conn, run_id, {**changes, "next_action": "approval", "stop_reason": "requires_approval"}
            )
            outcome = Outcome(run_id, iteration, "approval", "requires_approval")
        else:
            run = run_store.update(conn, run_id, {**changes, "next_action": "tools"})
            outcome = Outcome(run_id, iteration, "tools", None)
    deps._emit(MessageStored(row))
    return outcome


def _replayed(conn: Conn, run: dict[str, Any], step: dict[str, Any]) -> Outcome:
    """What comes after a step that was already stored (a retried or duplicated invocation)."""
    index = step["step_index"]
    if step["status"] == "llm_done":
        return Outcome(run["id"], index, "tools", None)
    if step["status"] == "awaiting_approval":
        pending = {c["id"] for c in step["tool_calls"]} & set(_approval_ids(conn, step))
        decided = set((step.get("approvals") or {}).keys())
        if pending <= decided:
            return Outcome(run["id"], index, "tools", None)
        return Outcome(run["id"], index, "approval", "requires_approval")
    if step["status"] == "completed":
        if step["next_action"] == "step":
            return Outcome(run["id"], index + 1, "step", None)
        return Outcome(run["id"], index, "done", run["stop_reason"] or step.get("stop_reason"))
    return Outcome(run["id"], index, "failed", run["stop_reason"] or "error")


def _approval_ids(conn: Conn, step: dict[str, Any]) -> list[str]:
    row = conn.execute("SELECT metadata FROM messages WHERE id = %s", (step["message_id"],)).fetchone()
    return list(((row or {}).get("metadata") or {}).get("requires_approval") or [])


# -- phase 2: the tool calls ----------------------------------------------------------------------


@dataclass
class _CallResult:
    call: ToolCall
    output: str
    status: str
    heartbeat: bool
    stdout: str = ""
    stderr: str = ""
    violation: bool = False
    # set when the step was completed in the same transaction as this (its last) result
    outcome: Outcome | None = None


def tools_phase(deps: StepDeps, run_id: str, iteration: int | None = None) -> Outcome:
    """Phase 2 of step ``iteration``; None: of the step the run stands at (what :func:`advance` does)."""
    with deps.db.transaction() as conn:
        entered = _enter(conn, run_id, iteration, finished_at="step")
        if isinstance(entered, Outcome):
            return entered
        run, step, agent, iteration = entered
        step_id = step_id_for(run_id, iteration)
        if step is None:
            raise OError(f"run {run_id} has no step {iteration} to run tools for")
        if step["status"] not in ("llm_done", "awaiting_approval"):
            return _replayed(conn, run, step)
        replay = _replayed(conn, run, step)
        if replay.next == "approval" and not run["cancel_requested"]:
            return replay
        if agent is None:
            return finish_run(conn, run, "error", error="the agent was deleted")
        # the tool rules of the revision that made the calls
        agent = serving.effective_agent(conn, agent, serving.run_revision(run, agent))
        tools = {t.name: t for t in agent_tools(agent, agent.pop("tools_json"))}
        rules = ToolRules.parse(agent["tool_rules"])
        tool_rows = _tool_rows(conn, run_id)
        history = _history(tool_rows)
        # results already stored by an earlier attempt of this phase
        stored = {r["step_position"]: r for r in tool_rows if r["step_id"] == step_id}
    calls = transcript.tool_calls_of(step)
    approvals: dict[str, Any] = step.get("approvals") or {}
    # ``history`` holds the run's earlier calls plus this step's stored prefix, so each new call is
    # judged against exactly the calls that came before it.
    results: list[_CallResult] = []
    for position, call in enumerate(calls, start=1):
        if position in stored:
            row = stored[position]
            first = (row.get("tool_returns") or [{}])[0]
            meta = row.get("metadata") or {}
            results.append(
                _CallResult(
                    call,
                    row["text"],
                    first.get("status", "success"),
                    bool(meta.get("heartbeat")),
                    violation=bool(meta.get("rule_violation")),
                )
            )
            continue
        finish = None
        if position == len(calls):
            # The last result and the step's completion commit together: one durable write fewer.
            def finish(conn: Conn, last: _CallResult, locked: dict[str, Any]) -> Outcome:
                done = history + ([] if last.violation else [Call(last.call.name, last.output)])
                return _complete_in(conn, run_id, step_id, iteration, [*results, last], rules, done, locked)

        result = _run_call(deps, run, agent, step_id, position, call, tools, rules, history, approvals, finish)
        if result.outcome is not None:
            return result.outcome
        if not result.violation:
            history.append(Call(call.name, result.output))
        results.append(result)
    return _complete_step(deps, run_id, step_id, iteration, results, rules, history)


def _run_call(
    deps: StepDeps,
    run: dict[str, Any],
    agent: dict[str, Any],
    step_id: str,
    position: int,
    call: ToolCall,
    tools: dict[str, AgentTool],
    rules: ToolRules,
    history: list[Call],
    approvals: dict[str, Any],
    finish: Callable[[Conn, _CallResult, dict[str, Any]], Outcome] | None = None,
) -> _CallResult:
    heartbeat = False
    error: str | None = None
    violation: str | None = None
    args: dict[str, Any] = {}
    tool = tools.get(call.name)
    decision = approvals.get(call.id)
    if run["cancel_requested"]:
        error = "The run was cancelled before this tool ran."
    elif decision is not None and not decision.get("approve"):
        reason = decision.get("reason")
        error = "Request to call tool denied by user." + (f" Reason: {reason}" if reason else "")
    elif tool is None:
        error = f"[ToolError] Tool {call.name!r} does not exist; available tools: {sorted(tools)}"
    else:
        violation = rules.violation(call.name, list(tools), history) if decision is None else None
        if violation:
            error = violation
            # the model must hear about it, so the loop goes on
            heartbeat = True
        else:
            try:
                args = transcript.parse_arguments(call.arguments)
            except ValueError as exc:
                error = f"[ToolError] invalid JSON arguments for {call.name}: {exc}"
            # models sometimes send the flag as a string; "false" must not mean yes
            flag = args.pop(HEARTBEAT, False)
            heartbeat = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")

    if error is None and tool is not None and not tool.is_builtin:
        # User code runs outside any transaction: it may be slow, and a crash here only means
        # it runs again on replay (its result is stored once either way).
        result = _run_user_tool(deps, tool, args, run)
        return _store_result(
            deps,
            run,
            step_id,
            position,
            call,
            result.output,
            result.status,
            heartbeat,
            result.stdout,
            result.stderr,
            finish=finish,
        )
    return _store_result(
        deps,
        run,
        step_id,
        position,
        call,
        error,
        "error" if error else "success",
        heartbeat,
        builtin_args=None if error else args,
        violation=violation is not None,
        finish=finish,
    )


def _run_user_tool(deps: StepDeps, tool: AgentTool, args: dict[str, Any], run: dict[str, Any]) -> _CallResult:
    call = ToolCall("", tool.name, "")
    if deps.tools is None:
        return _CallResult(call, "[ToolError] no sandbox is configured to run user tools", "error", False)
    try:
        assert tool.row is not None
        result = deps.tools.run(tool.row, args, organization_id=run["organization_id"], agent_id=run["agent_id"])
    except SimulatedCrash:
        raise
    except Exception as exc:  # a sandbox failure is the model's problem to route around, not the run's
        return _CallResult(call, f"[ToolError] {type(exc).__name__}: {exc}", "error", False)
    output = result.func_return if result.ok else (result.func_return or result.message or result.status)
    return _CallResult(call, output, "success" if result.ok else "error", False, result.stdout, result.stderr)


def _store_result(
    deps: StepDeps,
    run: dict[str, Any],
    step_id: str,
    position: int,
    call: ToolCall,
    output: str | None,
    status: str,
    heartbeat: bool,
    stdout: str = "",
    stderr: str = "",
    builtin_args: dict[str, Any] | None = None,
    violation: bool = False,
    finish: Callable[[Conn, _CallResult, dict[str, Any]], Outcome] | None = None,
) -> _CallResult:
    outcome: Outcome | None = None
    locked: dict[str, Any] | None = None
    with deps.db.transaction() as conn:
        if finish is not None:
            locked = run_store.get(conn, run["id"], for_update=True)  # locks in the order run, then step
        # The step's row lock serialises concurrent replays, so only one runs a built-in's edit.
        # The result is read by a second statement: its fresh snapshot sees what the lock holder
        # committed, which a join inside the locking statement would not (READ COMMITTED).
        step_store.get(conn, step_id, for_update=True)
        row = conn.execute(
            "SELECT * FROM messages WHERE step_id = %s AND step_position = %s", (step_id, position)
        ).fetchone()
        if row is None:
            if builtin_args is not None:
                output, status = _run_builtin(conn, run, call.name, builtin_args, deps.embedders)
            deps._fault("before_tool_commit")
            text = output or ""
            [row] = message_store.insert_many(
                conn,
                [
                    {
                        "id": transcript.derived_id("message", step_id, position),
                        "organization_id": run["organization_id"],
                        "agent_id": run["agent_id"],
                        "role": "tool",
                        "content": [{"type": "text", "text": text}],
                        "text": text,
                        "name": call.name,
                        "tool_call_id": call.id,
                        "tool_returns": [
                            {
                                "tool_call_id": call.id,
                                "status": status,
                                "func_response": text,
                                "stdout": [stdout] if stdout else None,
                                "stderr": [stderr] if stderr else None,
                            }
                        ],
                        "step_id": step_id,
                        "run_id": run["id"],
                        "step_position": position,
                        "metadata": {"heartbeat": heartbeat, **({"rule_violation": True} if violation else {})},
                    }
                ],
            )
        first = (row.get("tool_returns") or [{}])[0]
        meta = row.get("metadata") or {}
        result = _CallResult(
            call,
            row["text"],
            first.get("status", status),
            bool(meta.get("heartbeat")),
            violation=bool(meta.get("rule_violation")),
        )
        if finish is not None and locked is not None:
            outcome = finish(conn, result, locked)
    deps._fault("after_tool")
    deps._emit(MessageStored(row))
    result.outcome = outcome
    return result


def _run_builtin(
    conn: Conn, run: dict[str, Any], name: str, args: dict[str, Any], embedders: EmbedderSource
) -> tuple[str, str]:
    context = builtin.ToolContext(conn, run["organization_id"], run["agent_id"], run["id"], embedders)
    try:
        # A savepoint: a failing tool's partial writes roll back, the result message still commits.
        with conn.transaction():
            return builtin.run_builtin(context, name, args), "success"
    except (builtin.ToolError, OError) as exc:
        return f"[ToolError] {getattr(exc, 'message', None) or exc}", "error"
    except SimulatedCrash:
        raise
    except Exception as exc:
        logger.exception("built-in tool failed", extra={"tool": name})
        return f"[ToolError] {name} failed: {type(exc).__name__}: {exc}", "error"


def _complete_step(
    deps: StepDeps,
    run_id: str,
    step_id: str,
    iteration: int,
    results: list[_CallResult],
    rules: ToolRules,
    history: list[Call],
) -> Outcome:
    with deps.db.transaction() as conn:
        return _complete_in(conn, run_id, step_id, iteration, results, rules, history)


def _complete_in(
    conn: Conn,
    run_id: str,
    step_id: str,
    iteration: int,
    results: list[_CallResult],
    rules: ToolRules,
    history: list[Call],
    run: dict[str, Any] | None = None,
) -> Outcome:
    """Decide whether the loop goes on and complete the step, inside the caller's transaction."""
    keep_going = False
    stop_reason: str | None = None
    for result in results:
        name = result.call.name
        wants = result.heartbeat or result.status != "success"
        if result.status == "success" and rules.conditional_error(Call(name, result.output)):
            # a conditional rule that must map the output has no branch for it: Letta stops here
            keep_going, stop_reason = False, "invalid_tool_call"
            break
        if rules.is_terminal(name) and result.status == "success":
            if wants:
                stop_reason = "tool_rule"
            keep_going = False
            break
        if wants or rules.forces_continue(name):
            keep_going = True
    if not keep_going and stop_reason is None and rules.uncalled_required(history):
        keep_going = True
    if run is None:  # else the caller holds the run's lock already
        run = run_store.get(conn, run_id, for_update=True)
    assert run is not None
    if run["cancel_requested"]:
        keep_going, stop_reason = False, "cancelled"
    elif keep_going and iteration + 1 >= _max_steps(run):
        keep_going, stop_reason = False, "max_steps"
    # Under the run's lock; the status condition makes a late duplicate a no-op.
    completed = conn.execute(
        """UPDATE steps SET status = 'completed', next_action = %s, stop_reason = %s, completed_at = now()
           WHERE id = %s AND status <> 'completed' RETURNING id""",
        ("step" if keep_going else "done", None if keep_going else (stop_reason or "end_turn"), step_id),
    ).fetchone()
    if completed is None:
        step = step_store.get(conn, step_id)
        assert step is not None
        return _replayed(conn, run, step)
    if stop_reason == "cancelled":
        return finish_run(conn, run, "cancelled")
    if keep_going:
        run_store.update(conn, run_id, {"iteration": iteration + 1, "next_action": "step", "stop_reason": None})
        return Outcome(run_id, iteration + 1, "step", None)
    return finish_run(conn, run, stop_reason or "end_turn")
