"""The evolution loop as durable steps: reflect → propose → shadow → gate → canary → evaluate → decide.

Each step reads the evolution row, does its work, and records the result with a status change
only if the row is still where the step found it (a stop or a rollback in between wins). The
same :func:`step` is called by the local driver (:func:`run_local`) and by the Step Functions
handler (``functions/evolution/handler.py``), so both environments run one code path.

Every failure ends in :func:`rollback`: an exception in any step, an exhausted token or time
budget, a stop request, an evaluator whose hash changed, an agent reconfigured underneath.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from o.agent import revisions
from o.agent.engine import Engine
from o.agent.runner import Executions
from o.config import EvolutionSettings
from o.errors import Conflict, InvalidInput, NotFound
from o.evolution import evaluator, history, propose, shadow
from o.evolution.metrics import VersionMetrics, VersionStats
from o.evolution.rollout import AliasRouter, LocalRouter, validate_routing
from o.ids import new_id
from o.llm.config import LLMConfig
from o.observability import logger
from o.store import agents as agent_store
from o.store import evolution as store
from o.store import revisions as revision_store
from o.store.db import Conn, Database

# status → the action that moves it on
NEXT_ACTION = {
    "started": "reflect",
    "reflected": "propose",
    "proposed": "shadow",
    "shadowed": "gate",
    "gated": "canary",
    "canary": "evaluate",
}
ACTIONS = ("reflect", "propose", "shadow", "gate", "canary", "evaluate", "rollback")


class Budget(BaseModel):
    """One evolution's limits: the policy's defaults with a start request's overrides on top."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(ge=1)
    max_seconds: float = Field(gt=0)
    canary_weight: float = Field(gt=0, le=1)
    bake_seconds: int = Field(ge=0)
    max_bake_rounds: int = Field(ge=1)
    replay_sample: int = Field(ge=0, le=100)


@dataclass
class EvolutionDeps:
    db: Database
    # runs shadow replays through the real agent loop and builds LLM clients (engine.llm)
    engine: Engine
    policy: EvolutionSettings = field(default_factory=EvolutionSettings)
    # AWS: the weighted Lambda alias that carries canaries; None: the local router
    router: AliasRouter | None = None
    # AWS: per-version outcome figures of the alias's versions
    metrics: VersionMetrics | None = None
    # AWS: the evolution state machine; None: evolutions run in this process
    executions: Executions | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # (evolution_id, phase, message): the CLI prints these as progress
    progress: Callable[[str, str, str], None] | None = None
    # time.monotonic() by which one step must be done (a Lambda's remaining time); None = no limit
    step_deadline: float | None = None


@dataclass(frozen=True)
class StepResult:
    evolution_id: str
    status: str
    next: str  # an action, or "done"
    bake_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "evolution_id": self.evolution_id,
            "status": self.status,
            "next": self.next,
            "bake_seconds": self.bake_seconds,
        }


class Stop(Exception):
    """A step found a reason to end the evolution in rollback (budget, stop request, tampering...)."""


def _event(
    deps: EvolutionDeps, conn: Conn, evolution_id: str, phase: str, message: str, data: dict[str, Any] | None = None
) -> None:
    store.add_event(conn, evolution_id, phase, message, data)
    if deps.progress is not None:
        deps.progress(evolution_id, phase, message)


# --- start -------------------------------------------------------------------------------------------------


def start(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    trigger: str = "manual",
    budget: dict[str, Any] | None = None,
) -> dict[str, Any]:
    p = deps.policy
    merged = Budget(
        **{
            "max_tokens": p.max_tokens,
            "max_seconds": p.max_seconds,
            "canary_weight": p.canary_weight,
            "bake_seconds": p.bake_seconds,
            "max_bake_rounds": p.max_bake_rounds,
            "replay_sample": p.replay_sample,
            **{k: v for k, v in (budget or {}).items() if v is not None},
        }
    )
    validate_routing("1", {"2": merged.canary_weight})
    if merged.bake_seconds * merged.max_bake_rounds >= merged.max_seconds:
        raise InvalidInput(
            f"the canary could bake {merged.bake_seconds} s x {merged.max_bake_rounds} rounds, which does not fit "
            f"the evolution's time budget of {merged.max_seconds} s"
        )
    with deps.db.transaction() as conn:
        base = revisions.current(conn, organization_id, agent_id)
        active = store.active_for_agent(conn, agent_id)
        if active is not None:
            raise Conflict(
                f"agent {agent_id} already has an evolution in progress ({active['id']}, {active['status']})"
            )
        now = deps.clock()
        row = store.insert(
            conn,
            {
                "id": new_id("evolution"),
                "organization_id": organization_id,
                "agent_id": agent_id,
                "status": "started",
                "trigger": trigger,
                "base_revision": base["number"],
                "evaluator_hash": evaluator.current_hash(conn, agent_id),
                "budget": merged.model_dump(),
                "deadline": now + timedelta(seconds=merged.max_seconds),
            },
        )
        _event(deps, conn, row["id"], "started", f"evolution of revision {base['number']} started ({trigger})")
    return row


# --- the step dispatcher -----------------------------------------------------------------------------------


def step(deps: EvolutionDeps, evolution_id: str, action: str, *, reason: str | None = None) -> StepResult:
    """Run one action; idempotent (an action whose work is already recorded just reports where things stand)."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown evolution action {action!r}; expected one of {ACTIONS}")
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id)
    if evo is None:
        raise NotFound(f"evolution {evolution_id} not found")
    if evo["completed_at"] is not None:
        return StepResult(evolution_id, evo["status"], "done")
    if action == "rollback":
        return rollback(deps, evolution_id, reason or "rolled back on request")
    expected = NEXT_ACTION[evo["status"]]
    if action != expected:
        # a retried or late task: report the action that is actually due
        return StepResult(evolution_id, evo["status"], expected, _bake_seconds(evo))
    try:
        _check_limits(deps, evo)
        return STEPS[action](deps, evo)
    except (Stop, shadow.BudgetExceeded, propose.EvaluatorTampering) as exc:
        return rollback(deps, evolution_id, str(exc))
    except Exception as exc:
        logger.exception("evolution step failed", extra={"evolution_id": evolution_id, "action": action})
        return rollback(deps, evolution_id, f"{action} failed: {type(exc).__name__}: {exc}")


def _check_limits(deps: EvolutionDeps, evo: dict[str, Any]) -> None:
    if evo["stop_requested"]:
        raise Stop("stopped on request")
    if deps.clock() > evo["deadline"]:
        raise Stop(f"time budget of {evo['budget']['max_seconds']} s exhausted")
    if evo["tokens_used"] > evo["budget"]["max_tokens"]:
        raise Stop(f"token budget of {evo['budget']['max_tokens']} exhausted ({evo['tokens_used']} used)")


def _spend(deps: EvolutionDeps, evo: dict[str, Any], tokens: int) -> None:
    with deps.db.transaction() as conn:
        used = store.add_tokens(conn, evo["id"], tokens)
    if used > evo["budget"]["max_tokens"]:
        raise Stop(f"token budget of {evo['budget']['max_tokens']} exhausted ({used} used)")


def _advance(
    deps: EvolutionDeps,
    evo: dict[str, Any],
    expected: str,
    changes: dict[str, Any],
    phase: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Record a step's result if the evolution is still at ``expected``; None when a stop got there first."""
    with deps.db.transaction() as conn:
        current = store.get(conn, evo["id"], for_update=True)
        assert current is not None
        if current["status"] != expected or current["completed_at"] is not None:
            return None
        row = store.update(conn, evo["id"], changes)
        _event(deps, conn, evo["id"], phase, message, data)
        return row


def _superseded(evolution_id: str, deps: EvolutionDeps) -> StepResult:
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id)
    assert evo is not None
    if evo["completed_at"] is not None:
        return StepResult(evolution_id, evo["status"], "done")
    if evo["stop_requested"]:
        return rollback(deps, evolution_id, "stopped on request")
    return StepResult(evolution_id, evo["status"], NEXT_ACTION[evo["status"]], _bake_seconds(evo))


def _bake_seconds(evo: dict[str, Any]) -> int:
    return int(evo["budget"]["bake_seconds"]) if evo["status"] == "canary" else 0


# --- reflect and propose -----------------------------------------------------------------------------------


def do_reflect(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    with deps.db.transaction() as conn:
        reflection = propose.reflect(conn, evo["agent_id"])
    row = _advance(
        deps,
        evo,
        "started",
        {"status": "reflected", "reflection": reflection},
        "reflected",
        f"reflected on {reflection['runs']} recent runs, {reflection['feedback']['count']} feedback scores, "
        f"{len(reflection['history'])} past evolutions",
    )
    if row is None:
        return _superseded(evo["id"], deps)
    return StepResult(evo["id"], "reflected", "propose")


def _llm(deps: EvolutionDeps, llm_config: dict[str, Any]) -> Any:
    return deps.engine.llm(LLMConfig.model_validate(llm_config))


def do_propose(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    with deps.db.transaction() as conn:
        base = revision_store.get(conn, evo["agent_id"], evo["base_revision"])
        suite = evaluator.load_suite(conn, evo["agent_id"])
    assert base is not None
    cases = [
        {"name": c.name, "input": c.input, "checks": c.checks.model_dump(exclude_defaults=True)}
        for c in suite.gate_cases()
    ]
    client = _llm(deps, base["config"]["llm_config"])
    response = client.chat(propose.proposal_request(base["config"], evo["reflection"] or {}, cases))
    # spent even when the answer is then refused
    _spend(deps, evo, response.usage.total_tokens)
    config, rationale = propose.parse_proposal(response.content or "", base["config"])
    proposed = propose.Proposed(config, rationale, response.usage.total_tokens)
    with deps.db.transaction() as conn:
        current = store.get(conn, evo["id"], for_update=True)
        assert current is not None
        if current["status"] != "reflected" or current["completed_at"] is not None:
            return _superseded(evo["id"], deps)
        candidate = revisions.propose(
            conn,
            evo["organization_id"],
            evo["agent_id"],
            proposed.config,
            author="agent",
            rationale=proposed.rationale,
            evolution_id=evo["id"],
        )
        if candidate["parent"] != evo["base_revision"]:
            raise Stop(f"the agent was reconfigured during the evolution (now revision {candidate['parent']})")
        store.update(
            conn,
            evo["id"],
            {
                "status": "proposed",
                "candidate_revision": candidate["number"],
                "rationale": proposed.rationale,
                "diff": candidate["diff"],
            },
        )
        _event(
            deps,
            conn,
            evo["id"],
            "proposed",
            f"candidate revision {candidate['number']}: {proposed.rationale}",
            {"diff": candidate["diff"]},
        )
    return StepResult(evo["id"], "proposed", "shadow")


# --- shadow test and gate ----------------------------------------------------------------------------------


def do_shadow(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    with deps.db.transaction() as conn:
        base = revision_store.get(conn, evo["agent_id"], evo["base_revision"])
        cand = revision_store.get(conn, evo["agent_id"], evo["candidate_revision"])
        suite = evaluator.load_suite(conn, evo["agent_id"])
        source = agent_store.get(conn, evo["organization_id"], evo["agent_id"])
    assert base is not None and cand is not None and source is not None
    sample = (evo["reflection"] or {}).get("recent_inputs", [])[: evo["budget"]["replay_sample"]]
    replays = [shadow.Replay(f"recent-{i}", text) for i, text in enumerate(sample)]
    replays += shadow.case_replays(suite.gate_cases())
    if not replays:
        raise Stop("nothing to replay: the agent has no recent inputs and no evaluation cases")
    judge_client = judge_for(deps, suite, base["config"])
    deadline = time.monotonic() + max(0.0, (evo["deadline"] - deps.clock()).total_seconds())
    if deps.step_deadline is not None and deps.step_deadline < deadline:
        deadline = deps.step_deadline

    summaries: dict[str, evaluator.Summary] = {}
    for side, revision in (("current", base), ("candidate", cand)):
        with deps.db.transaction() as conn:
            _event(
                deps,
                conn,
                evo["id"],
                "shadow",
                f"replaying {len(replays)} inputs on the {side} revision {revision['number']}",
            )
        summary, spent = shadow.score(
            deps.engine, evo["id"], source, revision["config"], replays, suite, judge_client, deadline=deadline
        )
        _spend(deps, evo, spent)
        summaries[side] = summary
    figures = {
        "current": summaries["current"].figures(),
        "candidate": summaries["candidate"].figures(),
        "cases": {side: [_trim(c.as_dict()) for c in s.cases] for side, s in summaries.items()},
    }
    with deps.db.transaction() as conn:
        current = store.get(conn, evo["id"], for_update=True)
        assert current is not None
        if current["status"] != "proposed" or current["completed_at"] is not None:
            return _superseded(evo["id"], deps)
        store.add_figures(conn, evo["id"], {"shadow": figures})
        store.update(conn, evo["id"], {"status": "shadowed"})
        _event(
            deps,
            conn,
            evo["id"],
            "shadowed",
            f"shadow score {figures['current']['score']} (current) vs {figures['candidate']['score']} (candidate)",
            {"current": figures["current"], "candidate": figures["candidate"]},
        )
    return StepResult(evo["id"], "shadowed", "gate")


def judge_for(deps: EvolutionDeps, suite: evaluator.Suite, base_config: dict[str, Any]) -> Any:
    """The judge's client: its own model, else the base revision's — never the candidate's."""
    if not suite.judge.enabled:
        return None
    return _llm(deps, suite.judge.llm_config or base_config["llm_config"])


def _trim(case: dict[str, Any]) -> dict[str, Any]:
    reply = case.get("reply")
    return {**case, "reply": reply[:500] if isinstance(reply, str) else reply, "input": case["input"][:500]}


def _check_evaluator(conn: Conn, evo: dict[str, Any]) -> None:
    now = evaluator.current_hash(conn, evo["agent_id"])
    if now != evo["evaluator_hash"]:
        raise Stop("the evaluator (cases, judge or gate) changed during the evolution; refused")


def do_gate(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    with deps.db.transaction() as conn:
        _check_evaluator(conn, evo)
        suite = evaluator.load_suite(conn, evo["agent_id"])
    shadow_figures = evo["figures"]["shadow"]
    summaries = {
        side: evaluator.Summary([evaluator.CaseResult(**c) for c in shadow_figures["cases"][side]])
        for side in ("current", "candidate")
    }
    result = evaluator.gate(suite.gate, summaries["current"], summaries["candidate"])
    if not result.passed:
        with deps.db.transaction() as conn:
            store.add_figures(conn, evo["id"], {"shadow": {**shadow_figures, **result.figures}})
        return rollback(deps, evo["id"], "gate refused: " + "; ".join(result.reasons))
    row = _advance(
        deps,
        evo,
        "shadowed",
        {"status": "gated"},
        "gated",
        f"gate passed: score {result.figures['delta']:+.3f}",
        result.figures,
    )
    if row is None:
        return _superseded(evo["id"], deps)
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo["id"], {"shadow": {**shadow_figures, **result.figures}})
    return StepResult(evo["id"], "gated", "canary")


# --- canary, bake, decision --------------------------------------------------------------------------------


def do_canary(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    weight = float(evo["budget"]["canary_weight"])
    now = deps.clock()
    if deps.router is None:
        slot = f"local:{evo['agent_id']}"
        canary: dict[str, Any] = {"mode": "local", "weight": weight, "seed": evo["id"]}
        LocalRouter(weight, evo["id"])  # validates the weight
    else:
        slot = deps.router.slot
        canary = {"mode": "lambda", "function": deps.router.function_name, "alias": deps.router.alias, "weight": weight}
    canary.update({"started_at": now.isoformat(), "round": 0})
    with deps.db.transaction() as conn:
        current = store.get(conn, evo["id"], for_update=True)
        assert current is not None
        if current["status"] != "gated" or current["completed_at"] is not None:
            return _superseded(evo["id"], deps)
        holder = store.canary_in_slot(conn, slot)
        if holder is not None:
            raise Stop(f"another canary ({holder['id']}) holds {slot}; one canary per alias at a time")
        if deps.router is not None:
            # claim the slot in the same transaction that publishes: a concurrent evolution waits on the index
            store.update(conn, evo["id"], {"status": "canary", "canary": canary, "canary_slot": slot})
            version = deps.router.publish_candidate(evo["id"])
            state = deps.router.start_canary(version, weight)
            canary.update({"version": version, "stable_version": state.version})
        store.update(conn, evo["id"], {"status": "canary", "canary": canary, "canary_slot": slot})
        _event(
            deps,
            conn,
            evo["id"],
            "canary",
            f"canary: {weight:.0%} of traffic on revision "
            f"{evo['candidate_revision']}" + (f" (version {canary['version']})" if "version" in canary else ""),
            canary,
        )
    return StepResult(evo["id"], "canary", "evaluate", int(evo["budget"]["bake_seconds"]))


def canary_stats(deps: EvolutionDeps, evo: dict[str, Any]) -> tuple[VersionStats, VersionStats]:
    """(base, candidate) figures since the canary started. Turns, errors, latency and tokens come from the
    versions' CloudWatch metrics on AWS and from ``revision_outcomes`` locally; feedback always comes from
    the feedback table, where each score is attributed to the revision that produced the response."""
    canary = evo["canary"]
    since = datetime.fromisoformat(canary["started_at"])
    with deps.db.transaction() as conn:
        base = store.outcome_stats(conn, evo["agent_id"], evo["base_revision"], since)
        cand = store.outcome_stats(conn, evo["agent_id"], evo["candidate_revision"], since)
    if canary["mode"] != "lambda":
        return VersionStats(**base), VersionStats(**cand)
    if deps.metrics is None:
        raise Stop("a Lambda canary needs CloudWatch metrics to be judged")
    pairs = []
    for version, db_stats in ((canary["stable_version"], base), (canary["version"], cand)):
        cw = deps.metrics.stats(evo["agent_id"], version, since)
        pairs.append(replace(cw, feedback=db_stats["feedback"], feedback_count=int(db_stats["feedback_count"])))
    return pairs[0], pairs[1]


def do_evaluate(deps: EvolutionDeps, evo: dict[str, Any]) -> StepResult:
    with deps.db.transaction() as conn:
        _check_evaluator(conn, evo)
        suite = evaluator.load_suite(conn, evo["agent_id"])
    rules = suite.gate.canary
    base, cand = canary_stats(deps, evo)
    figures = {"base": base.as_dict(), "candidate": cand.as_dict(), "round": evo["canary"]["round"]}
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo["id"], {"canary": figures})
    if cand.turns < rules.min_turns:
        if evo["canary"]["round"] + 1 < evo["budget"]["max_bake_rounds"]:
            canary = {**evo["canary"], "round": evo["canary"]["round"] + 1}
            row = _advance(
                deps,
                evo,
                "canary",
                {"canary": canary},
                "bake",
                f"only {cand.turns} canary turns so far (need {rules.min_turns}); baking longer",
            )
            if row is None:
                return _superseded(evo["id"], deps)
            return StepResult(evo["id"], "canary", "evaluate", int(evo["budget"]["bake_seconds"]))
        if rules.on_inconclusive == "rollback":
            return rollback(deps, evo["id"], f"canary inconclusive: {cand.turns} turns, {rules.min_turns} needed")
        return promote(deps, evo, f"canary inconclusive ({cand.turns} turns); promoted on the shadow evidence")
    problems = []
    if cand.error_rate > base.error_rate + rules.max_error_rate_increase:
        problems.append(f"canary error rate {cand.error_rate:.1%} vs {base.error_rate:.1%}")
    if (
        cand.feedback is not None
        and base.feedback is not None
        and cand.feedback - base.feedback < rules.min_feedback_delta
    ):
        problems.append(f"canary feedback {cand.feedback:.2f} vs {base.feedback:.2f}")
    if evaluator.slower(base.latency_ms, cand.latency_ms, rules.max_latency_ratio, rules.min_latency_delta_ms):
        problems.append(f"canary latency {cand.latency_ms:.0f} ms vs {base.latency_ms:.0f} ms")
    if problems:
        return rollback(deps, evo["id"], "canary worse than the current revision: " + "; ".join(problems))
    return promote(
        deps,
        evo,
        f"canary healthy over {cand.turns} turns (errors {cand.error_rate:.1%}, feedback "
        f"{cand.feedback if cand.feedback is not None else 'none'})",
    )


def promote(deps: EvolutionDeps, evo: dict[str, Any], reason: str) -> StepResult:
    with deps.db.transaction() as conn:
        current = store.get(conn, evo["id"], for_update=True)
        assert current is not None
        if current["status"] != "canary" or current["completed_at"] is not None:
            return _superseded(evo["id"], deps)
        _check_evaluator(conn, current)
        running = revisions.current(conn, evo["organization_id"], evo["agent_id"])
        if running["number"] != evo["base_revision"]:
            raise Stop(f"the agent was reconfigured during the evolution (now revision {running['number']})")
        revisions.apply(conn, evo["organization_id"], evo["agent_id"], evo["candidate_revision"])
        if current["canary"]["mode"] == "lambda":
            assert deps.router is not None
            # inside the transaction: if the alias cannot move, the agent keeps its revision too
            deps.router.promote(current["canary"]["version"])
        row = store.update(
            conn,
            evo["id"],
            {"status": "promoted", "decision": "promoted", "reason": reason, "completed_at": deps.clock()},
        )
        _event(deps, conn, evo["id"], "promoted", f"promoted revision {evo['candidate_revision']}: {reason}")
    _finish(deps, row)
    return StepResult(evo["id"], "promoted", "done")


def rollback(deps: EvolutionDeps, evolution_id: str, reason: str) -> StepResult:
    """End the evolution: withdraw the canary, keep (or restore) the base revision, record why."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, for_update=True)
        if evo is None:
            raise NotFound(f"evolution {evolution_id} not found")
        if evo["completed_at"] is not None:
            return StepResult(evolution_id, evo["status"], "done")
        # the alias itself says whose canary it routes: this also withdraws a canary whose start was not recorded
        if deps.router is not None and deps.router.canary_evolution() == evolution_id:
            deps.router.rollback()
        agent = agent_store.get(conn, evo["organization_id"], evo["agent_id"])
        if (
            agent is not None
            and evo["candidate_revision"] is not None
            and agent.get("revision") == evo["candidate_revision"]
        ):
            revisions.apply(conn, evo["organization_id"], evo["agent_id"], evo["base_revision"])
        row = store.update(
            conn,
            evolution_id,
            {"status": "rolled_back", "decision": "rolled_back", "reason": reason, "completed_at": deps.clock()},
        )
        _event(deps, conn, evolution_id, "rolled_back", f"rolled back: {reason}")
    _finish(deps, row)
    return StepResult(evolution_id, "rolled_back", "done")


def _finish(deps: EvolutionDeps, evo: dict[str, Any]) -> None:
    shadow.cleanup_scratch(deps.db, evo["id"])
    passage_id = history.remember(deps.db, evo, deps.engine.embedders)
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo["id"], {"memory_passage_id": passage_id})


STEPS: dict[str, Callable[[EvolutionDeps, dict[str, Any]], StepResult]] = {
    "reflect": do_reflect,
    "propose": do_propose,
    "shadow": do_shadow,
    "gate": do_gate,
    "canary": do_canary,
    "evaluate": do_evaluate,
}


# --- drivers -----------------------------------------------------------------------------------------------


def run_local(
    deps: EvolutionDeps,
    evolution_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    during_bake: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Drive an evolution to its decision in this process; ``during_bake`` runs while the canary bakes."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id)
    if evo is None:
        raise NotFound(f"evolution {evolution_id} not found")
    action = NEXT_ACTION.get(evo["status"], "rollback") if evo["completed_at"] is None else None
    while action is not None:
        result = step(deps, evolution_id, action)
        if result.next == "done":
            break
        if result.next == "evaluate":
            if during_bake is not None:
                with deps.db.transaction() as conn:
                    during_bake(store.get(conn, evolution_id) or {})
            sleep(result.bake_seconds)
        action = result.next
    with deps.db.transaction() as conn:
        final = store.get(conn, evolution_id)
    assert final is not None
    return final


def stop(deps: EvolutionDeps, organization_id: str, evolution_id: str, reason: str = "stopped on request") -> dict:
    """Stop an evolution now and roll it back (a step still running discards its result)."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=organization_id, for_update=True)
        if evo is None:
            raise NotFound(f"evolution {evolution_id} not found")
        if evo["completed_at"] is None:
            store.update(conn, evolution_id, {"stop_requested": True})
    rollback(deps, evolution_id, reason)
    with deps.db.transaction() as conn:
        final = store.get(conn, evolution_id)
    assert final is not None
    return final


def stop_active(deps: EvolutionDeps, organization_id: str, agent_id: str, reason: str) -> dict | None:
    with deps.db.transaction() as conn:
        active = store.active_for_agent(conn, agent_id)
    if active is None or active["organization_id"] != organization_id:
        return None
    return stop(deps, organization_id, active["id"], reason)


_threads: list[Any] = []


def launch(deps: EvolutionDeps, evolution_id: str, *, wait: bool = False) -> None:
    """Run the evolution: a Step Functions execution on AWS, else in this process (a thread unless ``wait``)."""
    if deps.executions is not None:
        execution = deps.executions.start(evolution_id, {"evolution_id": evolution_id})
        if execution is not None:
            with deps.db.transaction() as conn:
                store.update(conn, evolution_id, {"execution_arn": execution})
        return
    if wait:
        run_local(deps, evolution_id)
        return
    import threading

    def work() -> None:
        try:
            run_local(deps, evolution_id)
        except Exception:
            logger.exception("background evolution failed", extra={"evolution_id": evolution_id})
            rollback(deps, evolution_id, "the evolution's worker failed")

    thread = threading.Thread(target=work, name=f"evolution-{evolution_id}", daemon=True)
    _threads[:] = [t for t in _threads if t.is_alive()]
    _threads.append(thread)
    thread.start()


def resume_incomplete(deps: EvolutionDeps) -> list[str]:
    """Drive again, in background threads, the in-process evolutions a previous process left undecided.

    Called when ``o serve`` starts its scheduler: steps are durable and idempotent, so each evolution
    continues from its recorded status (and one past its deadline is rolled back at its next step).
    Evolutions run by a state machine (``execution_arn`` set) are the state machine's business.
    """
    with deps.db.transaction() as conn:
        rows = conn.execute(
            "SELECT id FROM evolutions WHERE completed_at IS NULL AND execution_arn IS NULL ORDER BY created_at"
        ).fetchall()
    for row in rows:
        launch(deps, row["id"])
    return [r["id"] for r in rows]
