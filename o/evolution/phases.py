"""The evolution's phases: reflect → propose → shadow → gate → canary → evaluate (then promote or roll back).

Each phase reads what it needs, does its work (an LLM call, shadow replays, the alias), lets
:mod:`o.evolution.policy` decide, and records the result only if the evolution is still where the
phase found it (:func:`o.evolution.journal.advance`): a stop or a rollback in between wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from o.evolution import approval, candidates, evaluator, live_judge, owner, policy
from o.evolution import propose as proposer
from o.evolution import shadow as replay
from o.evolution.decision import check_evaluator, promote, rollback, superseded
from o.evolution.deps import EvolutionDeps, StepResult, Stop
from o.evolution.journal import advance, claim, event, spend
from o.evolution.metrics import LiveSamples, VersionStats
from o.evolution.rollout import LocalRouter
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.store import agents as agent_store
from o.store import evolution as store
from o.store import revisions as revision_store
from o.store.db import Conn
from o.store.evolution import Evolution, EvolutionStatus

Status = EvolutionStatus

# --- reflect and propose -----------------------------------------------------------------------------------


def reflect(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    with deps.db.transaction() as conn:
        reflection = proposer.reflect(conn, evo.agent_id)
    message = (
        f"reflected on {reflection['runs']} recent runs, {reflection['feedback']['count']} feedback scores, "
        f"{len(reflection['history'])} past evolutions"
    )
    changes = {"status": Status.REFLECTED, "reflection": reflection}
    if advance(deps, evo, Status.STARTED, changes, "reflected", message) is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.REFLECTED, "propose")


def _llm(deps: EvolutionDeps, llm_config: dict[str, Any]) -> LLMClient:
    return deps.engine.llm(LLMConfig.model_validate(llm_config))


def propose(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    with deps.db.transaction() as conn:
        base = revision_store.get(conn, evo.agent_id, evo.base_revision)
        suite = evaluator.load_suite(conn, evo.agent_id)
        may_change = owner.load(conn, evo.agent_id).may_change
    assert base is not None
    cases = [
        {"name": c.name, "input": c.input, "checks": c.checks.model_dump(exclude_defaults=True)}
        for c in suite.gate_cases()
    ]
    client = _llm(deps, base["config"]["llm_config"])
    count = int(evo.budget.get("candidates_per_pass", 1))
    request = proposer.proposal_request(base["config"], evo.reflection or {}, cases, may_change, count)
    response = client.chat(request)
    # spent even when the answer is then refused
    spend(deps, evo, response.usage.total_tokens, owner.usd_of(base["config"]["llm_config"], response.usage))
    proposals, skipped = proposer.parse_proposals(response.content or "", base["config"], may_change, count)
    with deps.db.transaction() as conn:
        current = claim(conn, evo, Status.REFLECTED)
        if current is not None:
            candidates.record(deps, conn, current, proposals, skipped)
    if current is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.PROPOSED, "shadow")


# --- shadow test and gate ----------------------------------------------------------------------------------


def judge_config(suite: evaluator.Suite, base_config: dict[str, Any]) -> dict[str, Any]:
    """The judge's model: its own, else the base revision's — never the candidate's."""
    return suite.judge.llm_config or base_config["llm_config"]


def judge_for(deps: EvolutionDeps, suite: evaluator.Suite, base_config: dict[str, Any]) -> LLMClient | None:
    """The judge's client (None when the suite has no judge)."""
    if not suite.judge.enabled:
        return None
    return _llm(deps, judge_config(suite, base_config))


def _replays(evo: Evolution, suite: evaluator.Suite) -> list[replay.Replay]:
    """The agent's recent inputs (as many as the budget samples), then the gate's evaluation cases, each
    as many times as the gate samples a case (the gate averages a case's samples)."""
    sample = (evo.reflection or {}).get("recent_inputs", [])[: evo.budget["replay_sample"]]
    replays = [replay.Replay(f"recent-{i}", text) for i, text in enumerate(sample)]
    return (replays + replay.case_replays(suite.gate_cases())) * suite.gate.samples_per_case


def _trim(case: dict[str, Any]) -> dict[str, Any]:
    reply = case.get("reply")
    return {**case, "reply": reply[:500] if isinstance(reply, str) else reply, "input": case["input"][:500]}


def shadow(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    with deps.db.transaction() as conn:
        base = revision_store.get(conn, evo.agent_id, evo.base_revision)
        numbers = candidates.candidate_revisions(evo)
        tested: list[tuple[str | int, dict[str, Any] | None]] = [("current", base)]
        tested += [(n, revision_store.get(conn, evo.agent_id, n)) for n in numbers]
        suite = evaluator.load_suite(conn, evo.agent_id)
        source = agent_store.get(conn, evo.organization_id, evo.agent_id)
    assert base is not None and all(r is not None for _, r in tested) and source is not None
    replays = _replays(evo, suite)
    if not replays:
        raise Stop("nothing to replay: the agent has no recent inputs and no evaluation cases")
    judge_client = judge_for(deps, suite, base["config"])
    deadline = policy.shadow_deadline(evo, deps.clock(), time.monotonic(), deps.step_deadline)

    summaries: dict[Any, evaluator.Summary] = {}
    for side, revision in tested:
        assert revision is not None
        with deps.db.transaction() as conn:
            named = side if side == "current" else "candidate"
            message = f"replaying {len(replays)} inputs on the {named} revision {revision['number']}"
            event(deps, conn, evo.id, "shadow", message)
        summary, spent, usd = replay.score(
            deps.engine,
            evo.id,
            source,
            revision["config"],
            replays,
            suite,
            judge_client,
            deadline=deadline,
            judge_config=judge_config(suite, base["config"]),
        )
        spend(deps, evo, spent, usd)
        summaries[side] = summary
    current_summary = summaries.pop("current")
    chosen, figures = candidates.judge(suite.gate, current_summary, summaries)
    figures["cases"] = {
        "current": [_trim(c.as_dict()) for c in current_summary.cases],
        "candidate": [_trim(c.as_dict()) for c in summaries[chosen].cases],
    }
    with deps.db.transaction() as conn:
        current = claim(conn, evo, Status.PROPOSED)
        if current is not None:
            _record_shadow(deps, conn, current, figures, chosen)
    if current is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.SHADOWED, "gate")


def _record_shadow(deps: EvolutionDeps, conn: Conn, evo: Evolution, figures: dict[str, Any], chosen: int) -> None:
    store.add_figures(conn, evo.id, {"shadow": figures})
    changes: dict[str, Any] = {"status": Status.SHADOWED, "candidate_revision": chosen}
    picked = next((c for c in evo.figures.get("candidates") or [] if c["revision"] == chosen), None)
    if picked is not None:
        changes.update(rationale=picked["rationale"], diff=picked["diff"])
    store.update(conn, evo.id, changes)
    current, candidate = figures["current"], figures["candidate"]
    message = f"shadow score {current['score']} (current) vs {candidate['score']} (candidate)"
    event(deps, conn, evo.id, "shadowed", message, {"current": current, "candidate": candidate})


def gate(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    with deps.db.transaction() as conn:
        check_evaluator(conn, evo)
        suite = evaluator.load_suite(conn, evo.agent_id)
    shadow_figures = evo.figures["shadow"]
    result = policy.gate_verdict(suite.gate, shadow_figures)
    judged = {"shadow": {**shadow_figures, **result.figures}}
    if not result.passed:
        with deps.db.transaction() as conn:
            store.add_figures(conn, evo.id, judged)
        return rollback(deps, evo.id, "gate refused: " + "; ".join(result.reasons))
    message = f"gate passed: score {result.figures['delta']:+.3f}"
    if advance(deps, evo, Status.SHADOWED, {"status": Status.GATED}, "gated", message, result.figures) is None:
        return superseded(deps, evo.id)
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo.id, judged)
    return StepResult(evo.id, Status.GATED, "canary")


# --- canary, bake, decision --------------------------------------------------------------------------------


def _canary_plan(deps: EvolutionDeps, evo: Evolution, now: datetime) -> tuple[str, dict[str, Any]]:
    """The router slot the canary takes and the canary's record (published version filled in later on AWS)."""
    weight = float(evo.budget["canary_weight"])
    if deps.router is None:
        LocalRouter(weight, evo.id)  # validates the weight
        slot = f"local:{evo.agent_id}"
        plan: dict[str, Any] = {"mode": "local", "weight": weight, "seed": evo.id}
    else:
        slot = deps.router.slot
        plan = {"mode": "lambda", "function": deps.router.function_name, "alias": deps.router.alias, "weight": weight}
    weights = policy.canary_weights(evo.budget)
    started = now.isoformat()
    return slot, {**plan, "weights": weights, "step": 0, "started_at": started, "step_started_at": started, "round": 0}


def canary(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    if approval.required(deps, evo, "canary"):
        return approval.request(deps, evo, "canary", "the candidate passed the gate; no live traffic before approval")
    slot, plan = _canary_plan(deps, evo, deps.clock())
    with deps.db.transaction() as conn:
        current = claim(conn, evo, Status.GATED)
        if current is not None:
            _start_canary(deps, conn, evo, slot, plan)
    if current is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.CANARY, "evaluate", int(evo.budget["bake_seconds"]))


def _start_canary(deps: EvolutionDeps, conn: Conn, evo: Evolution, slot: str, plan: dict[str, Any]) -> None:
    holder = store.canary_in_slot(conn, slot)
    if holder is not None:
        raise Stop(f"another canary ({holder.id}) holds {slot}; one canary per alias at a time")
    if deps.router is not None:
        # claim the slot in the same transaction that publishes: a concurrent evolution waits on the index
        store.update(conn, evo.id, {"status": Status.CANARY, "canary": plan, "canary_slot": slot})
        version = deps.router.publish_candidate(evo.id)
        state = deps.router.start_canary(version, plan["weight"])
        plan = {**plan, "version": version, "stable_version": state.version}
    store.update(conn, evo.id, {"status": Status.CANARY, "canary": plan, "canary_slot": slot})
    published = f" (version {plan['version']})" if "version" in plan else ""
    message = f"canary: {plan['weight']:.0%} of traffic on revision {evo.candidate_revision}{published}"
    event(deps, conn, evo.id, "canary", message, plan)


def _samples(rows: list[dict[str, Any]]) -> LiveSamples:
    return LiveSamples(
        errors=[0.0 if r["ok"] else 1.0 for r in rows],
        latency_ms=[float(r["latency_ms"]) for r in rows],
        tokens=[float(r["tokens"]) for r in rows],
        tool_failures=[float(r["tool_failures"]) for r in rows],
        judge=[float(r["score"]) for r in rows if r.get("score") is not None],
    )


def canary_stats(deps: EvolutionDeps, evo: Evolution) -> tuple[VersionStats, VersionStats]:
    """(base, candidate) figures over the current step's window (the same window for both): each run's outcome
    and each feedback score from the database, where they are attributed to the revision that produced them
    (on AWS as locally). On AWS a side whose turns the database does not hold is read from the versions'
    CloudWatch metrics instead (aggregates by the minute, without per-turn samples)."""
    assert evo.canary is not None and evo.candidate_revision is not None
    since = datetime.fromisoformat(evo.canary.get("step_started_at") or evo.canary["started_at"])
    with deps.db.transaction() as conn:
        base = store.outcome_stats(conn, evo.agent_id, evo.base_revision, since)
        cand = store.outcome_stats(conn, evo.agent_id, evo.candidate_revision, since)
        base_samples = _samples(store.outcome_samples(conn, evo.agent_id, evo.base_revision, since))
        cand_samples = _samples(store.outcome_samples(conn, evo.agent_id, evo.candidate_revision, since))
    if evo.canary["mode"] != "lambda":
        return VersionStats(**base, samples=base_samples), VersionStats(**cand, samples=cand_samples)
    if deps.metrics is None:
        raise Stop("a Lambda canary needs CloudWatch metrics to be judged")
    metrics = deps.metrics

    def measured(version: str, db_stats: dict[str, Any], samples: LiveSamples) -> VersionStats:
        if samples.errors:
            # the database holds every turn of the window, exactly (CloudWatch aggregates by the minute)
            return VersionStats(**db_stats, samples=samples)
        cw = metrics.stats(evo.agent_id, version, since)
        return replace(cw, feedback=db_stats["feedback"], feedback_count=int(db_stats["feedback_count"]))

    return (
        measured(evo.canary["stable_version"], base, base_samples),
        measured(evo.canary["version"], cand, cand_samples),
    )


def _evidence(deps: EvolutionDeps, evo: Evolution, awaiting: bool = False) -> tuple[Any, VersionStats, VersionStats]:
    """Judge this round's sample of live replies, then gather both sides' figures over the step's window and
    record them (each check's test and p-value) in the canary's figures; (rules, base, candidate)."""
    with deps.db.transaction() as conn:
        check_evaluator(conn, evo)
        suite = evaluator.load_suite(conn, evo.agent_id)
        base_revision = revision_store.get(conn, evo.agent_id, evo.base_revision)
    assert evo.canary is not None and base_revision is not None
    since = datetime.fromisoformat(evo.canary.get("step_started_at") or evo.canary["started_at"])
    client, judge_model = judge_for(deps, suite, base_revision["config"]), judge_config(suite, base_revision["config"])
    judged = live_judge.score_window(deps, evo, suite, client, judge_model, since)
    rules = suite.gate.canary
    base, cand = canary_stats(deps, evo)
    checks = [*policy.live_checks(rules, base, cand), policy.judge_check(rules, base, cand)]
    figures = {
        "base": base.as_dict(),
        "candidate": cand.as_dict(),
        "round": int(evo.canary["round"]),
        "step": int(evo.canary.get("step", 0)),
        "weight": evo.canary["weight"],
        "checks": {c.name: {"failed": c.failed, **c.evidence} for c in checks if c is not None},
        "judge": judged.as_dict(),
        **({"awaiting": "promotion"} if awaiting else {}),
    }
    with deps.db.transaction() as conn:
        fresh = store.get(conn, evo.id)
        assert fresh is not None
        trail = [*fresh.figures.get("canary_evaluations", []), figures][-50:]
        totals = fresh.figures.get("live_judge") or {}
        totals = {
            **totals,
            "judged": int(totals.get("judged", 0)) + judged.judged,
            "tokens": int(totals.get("tokens", 0)) + judged.tokens,
            "usd": round(float(totals.get("usd", 0.0)) + judged.usd, 6),
            "fraction": judged.fraction,
        }
        store.add_figures(conn, evo.id, {"canary": figures, "canary_evaluations": trail, "live_judge": totals})
    return rules, base, cand


def evaluate(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    assert evo.canary is not None
    rules, base, cand = _evidence(deps, evo)
    round_no, step_no = int(evo.canary["round"]), int(evo.canary.get("step", 0))
    weights = evo.canary.get("weights") or [evo.canary["weight"]]
    max_rounds = int(evo.budget["max_bake_rounds"])
    last = step_no + 1 >= len(weights)
    verdict = policy.canary_verdict(rules, base, cand, round_no=round_no, max_rounds=max_rounds, last_step=last)
    if verdict.action == "bake":
        return _bake_again(deps, evo, verdict.reason)
    if verdict.action == "step":
        return _step_up(deps, evo, float(weights[step_no + 1]), verdict.reason)
    if verdict.action == "rollback":
        return rollback(deps, evo.id, verdict.reason)
    if approval.required(deps, evo, "promotion"):
        return approval.request(deps, evo, "promotion", verdict.reason)
    return promote(deps, evo, verdict.reason)


def _bake_again(deps: EvolutionDeps, evo: Evolution, reason: str) -> StepResult:
    assert evo.canary is not None
    changes = {"canary": {**evo.canary, "round": evo.canary["round"] + 1}}
    if advance(deps, evo, Status.CANARY, changes, "bake", reason) is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.CANARY, "evaluate", int(evo.budget["bake_seconds"]))


def _step_up(deps: EvolutionDeps, evo: Evolution, weight: float, reason: str) -> StepResult:
    """The evidence held at this weight: move the canary to the next one, with a fresh window."""
    assert evo.canary is not None
    now = deps.clock().isoformat()
    step = int(evo.canary.get("step", 0)) + 1
    canary = {**evo.canary, "weight": weight, "step": step, "round": 0, "step_started_at": now}
    with deps.db.transaction() as conn:
        if claim(conn, evo, Status.CANARY) is None:
            current = None
        else:
            if canary["mode"] == "lambda":
                assert deps.router is not None
                # in the transaction: if the alias cannot move, the canary stays where it was
                deps.router.set_weight(weight)
            current = store.update(conn, evo.id, {"canary": canary})
            event(deps, conn, evo.id, "step", f"canary stepped to {weight:.0%} of traffic: {reason}", canary)
    if current is None:
        return superseded(deps, evo.id)
    return StepResult(evo.id, Status.CANARY, "evaluate", int(evo.budget["bake_seconds"]))


def await_approval(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    """The ``await`` action. While a promotion waits for the owner the canary keeps its traffic and is judged
    again each time: evidence that turns bad rolls it back at once (the owner's approval then finds nothing to
    approve: 409); evidence short of enough turns keeps it waiting (it passed its steps already)."""
    if evo.status == Status.CANARY and "promotion" in (evo.figures.get("approvals") or {}):
        rules, base, cand = _evidence(deps, evo, awaiting=True)
        problems = policy.canary_problems(rules, base, cand)
        if problems:
            reason = "canary worse than the current revision while its promotion waited for approval: "
            return rollback(deps, evo.id, reason + "; ".join(problems))
    return approval.await_step(deps, evo)


PHASES: dict[str, Callable[[EvolutionDeps, Evolution], StepResult]] = {
    "reflect": reflect,
    "propose": propose,
    "shadow": shadow,
    "gate": gate,
    "canary": canary,
    "evaluate": evaluate,
}
