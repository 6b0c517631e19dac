"""The evolution loop's entry points: start one, run one step, and the drivers that repeat steps.

An evolution is a sequence of durable steps (:mod:`o.evolution.phases`, decided by
:mod:`o.evolution.policy`). The same :func:`step` is called by the in-process driver
(:func:`run_local`, on a thread from :func:`launch`) and by the Step Functions handler
(``functions/evolution/handler.py``, when ``EvolutionDeps.executions`` names a state machine), so
both environments run one code path. A step that fails for any reason ends in :func:`rollback`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from o.agent import revisions
from o.errors import Conflict, InvalidInput, NotFound
from o.evolution import evaluator, owner, policy
from o.evolution import propose as proposer
from o.evolution import shadow as replay
from o.evolution.decision import promote, rollback
from o.evolution.deps import EvolutionDeps, StepResult, Stop
from o.evolution.journal import event, load
from o.evolution.phases import PHASES, await_approval
from o.evolution.policy import ACTIONS, NEXT_ACTION, Budget
from o.ids import new_id
from o.observability import logger
from o.store import evolution as store
from o.store.evolution import Evolution

__all__ = [
    "ACTIONS",
    "NEXT_ACTION",
    "Budget",
    "EvolutionDeps",
    "StepResult",
    "launch",
    "promote",
    "resume_incomplete",
    "rollback",
    "run_local",
    "start",
    "step",
    "stop",
    "stop_active",
]


def start(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    trigger: str = "manual",
    budget: dict[str, Any] | None = None,
) -> Evolution:
    """Record a new evolution of the agent's running revision; raises Conflict while another is undecided."""
    merged = policy.merge_budget(deps.policy, budget)
    now = deps.clock()
    with deps.db.transaction() as conn:
        base = revisions.current(conn, organization_id, agent_id)
        active = store.active_for_agent(conn, agent_id)
        if active is not None:
            raise Conflict(f"agent {agent_id} already has an evolution in progress ({active.id}, {active.status})")
        # the owner's schedule and budgets (per pass, and what is left of the day's)
        owner_policy = owner.load(conn, agent_id)
        owner.check_schedule(conn, owner_policy, agent_id, trigger, now)
        limit = owner.pass_token_limit(conn, owner_policy, agent_id, now, merged.max_tokens)
        usd = owner.pass_usd_limit(conn, owner_policy, agent_id, now)
        merged = merged.model_copy(update={"max_tokens": limit, "max_usd": usd})
        evo = store.insert(
            conn,
            evolution_id=new_id("evolution"),
            organization_id=organization_id,
            agent_id=agent_id,
            trigger=trigger,
            base_revision=base["number"],
            evaluator_hash=evaluator.current_hash(conn, agent_id),
            budget=merged.model_dump(),
            deadline=now + timedelta(seconds=merged.max_seconds),
        )
        event(deps, conn, evo.id, "started", f"evolution of revision {base['number']} started ({trigger})")
    return evo


def step(deps: EvolutionDeps, evolution_id: str, action: str, *, reason: str | None = None) -> StepResult:
    """Run one action; idempotent (an action whose work is already recorded just reports where things stand)."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown evolution action {action!r}; expected one of {ACTIONS}")
    evo = load(deps, evolution_id)
    if evo.completed:
        return StepResult(evolution_id, evo.status, "done")
    if action == "rollback":
        return rollback(deps, evolution_id, reason or "rolled back on request")
    if action == "await":
        return _guarded(deps, evo, action, await_approval)
    expected = policy.due_action(evo)
    if action != expected:
        # a retried or late task: report the action that is actually due
        return StepResult(evolution_id, evo.status, expected, policy.bake_seconds(evo))
    return _guarded(deps, evo, action, PHASES[action])


def _guarded(
    deps: EvolutionDeps, evo: Evolution, action: str, phase: Callable[[EvolutionDeps, Evolution], StepResult]
) -> StepResult:
    """Run ``phase`` unless a limit ends the evolution first; any failure ends it in rollback."""
    evolution_id = evo.id
    try:
        limit = policy.limit_reached(evo, deps.clock())
        if limit is not None:
            raise Stop(limit)
        return phase(deps, evo)
    except proposer.EvaluatorTampering as exc:
        with deps.db.transaction() as conn:
            store.record_tampering(conn, evo.organization_id, evo.agent_id, "proposal", exc.message)
        return rollback(deps, evolution_id, str(exc))
    except (Stop, replay.BudgetExceeded, proposer.NotAllowed) as exc:
        return rollback(deps, evolution_id, str(exc))
    except Exception as exc:
        logger.exception("evolution step failed", extra={"evolution_id": evolution_id, "action": action})
        return rollback(deps, evolution_id, f"{action} failed: {type(exc).__name__}: {exc}")


# --- drivers -----------------------------------------------------------------------------------------------


def run_local(
    deps: EvolutionDeps,
    evolution_id: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    during_bake: Callable[[Evolution], None] | None = None,
) -> Evolution:
    """Drive an evolution to its decision in this process; ``during_bake`` runs while the canary bakes."""
    evo = load(deps, evolution_id)
    action: str | None = None if evo.completed else NEXT_ACTION.get(evo.status, "rollback")
    while action is not None:
        result = step(deps, evolution_id, action)
        if result.next == "done":
            break
        if result.next == "evaluate":
            if during_bake is not None:
                during_bake(load(deps, evolution_id))
            sleep(result.bake_seconds)
        elif result.next == "await":
            sleep(result.bake_seconds)
        action = result.next
    return load(deps, evolution_id)


def stop(deps: EvolutionDeps, organization_id: str, evolution_id: str, reason: str = "stopped on request") -> Evolution:
    """Stop an evolution now and roll it back (a step still running discards its result)."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=organization_id, for_update=True)
        if evo is None:
            raise NotFound(f"evolution {evolution_id} not found")
        if not evo.completed:
            store.update(conn, evolution_id, {"stop_requested": True})
    rollback(deps, evolution_id, reason)
    return load(deps, evolution_id)


def stop_active(deps: EvolutionDeps, organization_id: str, agent_id: str, reason: str) -> Evolution | None:
    """Stop the agent's undecided evolution, if it has one."""
    with deps.db.transaction() as conn:
        active = store.active_for_agent(conn, agent_id)
    if active is None or active.organization_id != organization_id:
        return None
    return stop(deps, organization_id, active.id, reason)


_threads: list[threading.Thread] = []


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
        undecided = store.undecided_in_process(conn)
    for evolution_id in undecided:
        launch(deps, evolution_id)
    return undecided
