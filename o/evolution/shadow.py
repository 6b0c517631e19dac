"""Shadow tests: replay inputs on a revision in a side-effect-free copy of the agent.

Each replay runs the real agent loop (``o.agent``) on a fresh scratch agent that carries the
revision's configuration and a copy of the live agent's core-memory values, inside a scratch
organization created for this shadow run and deleted afterwards (with everything the replays
wrote: messages, runs, block edits, archival passages). The live agent is never touched.

The replays run on a worker thread so the evolution's time budget holds even when a provider
hangs: the caller stops waiting at the deadline; the worker stops after its current replay and
still deletes its scratch organization.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from o.agent import runs, transcript
from o.agent.engine import Engine
from o.agent.runner import drive
from o.evolution import evaluator, owner
from o.ids import new_id
from o.llm.types import Usage
from o.memory import blocks as memory_blocks
from o.observability import logger
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import orgs
from o.store import runs as run_store
from o.store import tools as tool_store
from o.store.db import Database
from o.store.records import RunStatus
from o.tools import base as base_tools
from o.tools.sandbox.base import ToolResult

SCRATCH_PREFIX = "o-scratch/"
MAX_STEPS_PER_REPLAY = 10


class BudgetExceeded(Exception):
    """The evolution ran out of time or tokens."""


@dataclass(frozen=True)
class Replay:
    name: str
    input: str


@dataclass
class ReplayResult:
    reply: str | None
    ok: bool
    latency_ms: float
    tokens: int
    error: str | None = None
    usd: float = 0.0  # the replay's model calls at the revision's model's list price


def scratch_org_name(evolution_id: str) -> str:
    return f"{SCRATCH_PREFIX}{evolution_id}/{uuid.uuid4()}"


def cleanup_scratch(db: Database, evolution_id: str) -> int:
    """Delete scratch organizations an interrupted shadow run of ``evolution_id`` left behind."""
    with db.transaction() as conn:
        return orgs.delete_named_like(conn, f"{SCRATCH_PREFIX}{evolution_id}/%")


def _scratch_agent(conn: Any, scratch_org: str, source: dict[str, Any], config: dict[str, Any]) -> str:
    values = {b["label"]: b["value"] for b in block_store.for_agents(conn, [source["id"]])[source["id"]]}
    agent = agent_store.insert(
        conn,
        {
            "id": new_id("agent"),
            "organization_id": scratch_org,
            "name": f"shadow of {source['name']}",
            "agent_type": source["agent_type"],
            "system": config["system"],
            "llm_config": config["llm_config"],
            "embedding_config": source["embedding_config"],
            "tool_rules": config["tool_rules"],
            "metadata": {"shadow_of": source["id"]},
        },
    )
    for spec in config["blocks"]:
        value = values.get(spec["label"], "")[: spec["limit"]]
        block = memory_blocks.create(
            conn,
            scratch_org,
            {
                "label": spec["label"],
                "value": value,
                "limit": spec["limit"],
                "description": spec["description"],
                "read_only": spec["read_only"],
            },
        )
        block_store.attach(conn, agent["id"], block)
    for tool_id in config["tool_ids"]:
        tool_store.attach(conn, agent["id"], tool_id)
    base_tools.attach_like(conn, scratch_org, agent["id"], source["id"])
    return agent["id"]


class ShadowTools:
    """User tools during shadow tests: not run, because what they do (an email, a payment, a write to another
    system) would escape the scratch copy. The model sees an explicit error and carries on without the result."""

    def run(self, tool: dict[str, Any], args: dict[str, Any], *, organization_id: str, agent_id: str) -> ToolResult:
        del args, organization_id, agent_id
        return ToolResult(
            status="error",
            func_return=f"[shadow test] user tool {tool['name']!r} is not run during shadow tests",
            message="user tools are not executed in shadow tests",
        )


def replay_one(
    engine: Engine,
    scratch_org: str,
    source: dict[str, Any],
    config: dict[str, Any],
    text: str,
    *,
    run_user_tools: bool = False,
) -> ReplayResult:
    db = engine.db
    with db.transaction() as conn:
        agent_id = _scratch_agent(conn, scratch_org, source, config)
        started = runs.start(
            conn, scratch_org, agent_id, [runs.InputMessage("user", text)], {"max_steps": MAX_STEPS_PER_REPLAY}
        )
    t0 = time.perf_counter()
    error = None
    try:
        drive(engine.deps() if run_user_tools else engine.deps(tools=ShadowTools()), started.run.id)
    except Exception as exc:  # a crashing candidate is a result, not a crash of the evolution
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - t0) * 1000
    with db.transaction() as conn:
        run = run_store.get(conn, started.run.id)
        assert run is not None
        try:
            _, rows = runs.produced(conn, run.id, started)
        except runs.RunFailed:
            rows = []  # a failed replay is scored as an error below, not raised
    reply = "\n".join(transcript.replies(rows)) or None
    tokens = int(run.usage.get("total_tokens", 0))
    ok = error is None and run.status == RunStatus.COMPLETED and reply is not None
    if not ok and error is None:
        error = run.error or f"run ended with {run.stop_reason} and no reply"
    usage = Usage(int(run.usage.get("prompt_tokens", 0)), int(run.usage.get("completion_tokens", 0)), tokens)
    return ReplayResult(reply, ok, latency_ms, tokens, error, owner.usd_of(config.get("llm_config"), usage))


def run_shadow(
    engine: Engine,
    evolution_id: str,
    source: dict[str, Any],
    config: dict[str, Any],
    replays: list[Replay],
    *,
    deadline: float | None,
    on_result: Callable[[Replay, ReplayResult], None] | None = None,
) -> list[ReplayResult]:
    """Replay every input on ``config``; raise :class:`BudgetExceeded` at ``deadline`` (time.monotonic;
    None waits as long as the replays take)."""
    results: list[ReplayResult] = []
    abandoned = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        with engine.db.transaction() as conn:
            org_id = new_id("org")
            orgs.create(conn, org_id, scratch_org_name(evolution_id))
        try:
            for replay in replays:
                if abandoned.is_set():
                    return
                result = replay_one(engine, org_id, source, config, replay.input)
                results.append(result)
                if on_result is not None and not abandoned.is_set():
                    on_result(replay, result)
        except BaseException as exc:
            failure.append(exc)
        finally:
            try:
                with engine.db.transaction() as conn:
                    orgs.delete(conn, org_id)
            except Exception:
                logger.exception("could not delete a shadow scratch organization", extra={"org": org_id})

    worker = threading.Thread(target=work, name=f"shadow-{evolution_id}", daemon=True)
    worker.start()
    worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        abandoned.set()
        raise BudgetExceeded(
            f"time budget exhausted during the shadow test after {len(results)} of {len(replays)} replays"
        )
    if failure:
        raise failure[0]
    return results


def score(
    engine: Engine,
    evolution_id: str,
    source: dict[str, Any],
    config: dict[str, Any],
    replays: list[Replay],
    suite: evaluator.Suite,
    judge_client: Any,
    *,
    deadline: float | None,
    judge_config: dict[str, Any] | None = None,
) -> tuple[evaluator.Summary, int, float]:
    """Replay on ``config`` and score every reply: deterministic checks (evaluation cases), the LLM judge,
    errors, latency and tokens. Returns the summary and the tokens and list-price dollars spent (replays at
    the revision's model, the judge at ``judge_config``'s)."""
    checks = {f"case:{c.name}": c.checks for c in suite.cases}
    results = run_shadow(engine, evolution_id, source, config, replays, deadline=deadline)
    summary = evaluator.Summary()
    spent, usd = 0, 0.0
    for replay, result in zip(replays, results, strict=True):
        verdict = evaluator.Verdict(None)
        if judge_client is not None and result.ok and result.reply is not None:
            verdict = evaluator.judge_reply(judge_client, suite.judge, replay.input, result.reply)
        case_checks = checks.get(replay.name)
        check_score = evaluator.check_score(case_checks, result.reply or "") if case_checks else None
        summary.cases.append(
            evaluator.CaseResult(
                name=replay.name,
                input=replay.input,
                reply=result.reply,
                ok=result.ok,
                score=evaluator.combine(check_score, verdict.score, suite.gate.judge_weight, result.ok),
                checks=check_score,
                judge=verdict.score,
                latency_ms=result.latency_ms,
                tokens=result.tokens,
                error=result.error,
            )
        )
        spent += result.tokens + verdict.tokens
        usd += result.usd + owner.usd_of(judge_config, verdict.usage)
    return summary, spent, usd


def case_replays(cases: list[evaluator.EvalCase]) -> list[Replay]:
    return [Replay(f"case:{c.name}", c.input) for c in cases]
