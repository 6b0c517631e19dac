"""How an evolution ends: promoted on evidence, or rolled back for a reason, and remembered either way.

Every failure ends in :func:`rollback`: an exception in any step, an exhausted token or time budget,
a stop request, an evaluator whose hash changed, an agent reconfigured underneath.
"""

from __future__ import annotations

from o.agent import revisions
from o.errors import NotFound
from o.evolution import evaluator, history, notify, owner, policy, shadow
from o.evolution.deps import EvolutionDeps, StepResult, Stop
from o.evolution.journal import claim, event, load
from o.observability import logger
from o.store import agents as agent_store
from o.store import evolution as store
from o.store.db import Conn
from o.store.evolution import Evolution, EvolutionStatus


def check_evaluator(conn: Conn, evo: Evolution) -> None:
    """Raise Stop if the evaluator is not the one the evolution started with."""
    if evaluator.current_hash(conn, evo.agent_id) != evo.evaluator_hash:
        raise Stop("the evaluator (cases, judge or gate) changed during the evolution; refused")


def promote(deps: EvolutionDeps, evo: Evolution, reason: str) -> StepResult:
    with deps.db.transaction() as conn:
        current = claim(conn, evo, EvolutionStatus.CANARY)
        row = _apply_candidate(deps, conn, current, reason) if current is not None else None
    if row is None:
        return superseded(deps, evo.id)
    _finish(deps, row)
    return StepResult(evo.id, EvolutionStatus.PROMOTED, "done")


def _apply_candidate(deps: EvolutionDeps, conn: Conn, evo: Evolution, reason: str) -> Evolution:
    """Make the candidate the agent's revision (and the alias's version), in the caller's transaction."""
    check_evaluator(conn, evo)
    running = revisions.current(conn, evo.organization_id, evo.agent_id)
    if running["number"] != evo.base_revision:
        raise Stop(f"the agent was reconfigured during the evolution (now revision {running['number']})")
    assert evo.candidate_revision is not None and evo.canary is not None
    revisions.apply(conn, evo.organization_id, evo.agent_id, evo.candidate_revision)
    if evo.canary["mode"] == "lambda":
        assert deps.router is not None
        # inside the transaction: if the alias cannot move, the agent keeps its revision too
        deps.router.promote(evo.canary["version"])
    row = store.update(conn, evo.id, _decided(deps, EvolutionStatus.PROMOTED, reason))
    event(deps, conn, evo.id, "promoted", f"promoted revision {evo.candidate_revision}: {reason}")
    return row


def rollback(deps: EvolutionDeps, evolution_id: str, reason: str) -> StepResult:
    """End the evolution: withdraw the canary, keep (or restore) the base revision, record why."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, for_update=True)
        if evo is None:
            raise NotFound(f"evolution {evolution_id} not found")
        if evo.completed:
            return StepResult(evolution_id, evo.status, "done")
        # the alias itself says whose canary it routes: this also withdraws a canary whose start was not recorded
        if deps.router is not None and deps.router.canary_evolution() == evolution_id:
            deps.router.rollback()
        _restore_base(conn, evo)
        row = store.update(conn, evolution_id, _decided(deps, EvolutionStatus.ROLLED_BACK, reason))
        event(deps, conn, evolution_id, "rolled_back", f"rolled back: {reason}")
    _finish(deps, row)
    return StepResult(evolution_id, EvolutionStatus.ROLLED_BACK, "done")


def superseded(deps: EvolutionDeps, evolution_id: str) -> StepResult:
    """Where an evolution stands after a step found its result overtaken (by a stop, or another step)."""
    evo = load(deps, evolution_id)
    if evo.completed:
        return StepResult(evolution_id, evo.status, "done")
    if evo.stop_requested:
        return rollback(deps, evolution_id, "stopped on request")
    return StepResult(evolution_id, evo.status, policy.due_action(evo), policy.bake_seconds(evo))


def _restore_base(conn: Conn, evo: Evolution) -> None:
    agent = agent_store.get(conn, evo.organization_id, evo.agent_id)
    if agent is not None and evo.candidate_revision is not None and agent.get("revision") == evo.candidate_revision:
        revisions.apply(conn, evo.organization_id, evo.agent_id, evo.base_revision)


def _decided(deps: EvolutionDeps, decision: EvolutionStatus, reason: str) -> dict[str, object]:
    return {"status": decision, "decision": decision, "reason": reason, "completed_at": deps.clock()}


def _finish(deps: EvolutionDeps, evo: Evolution) -> None:
    shadow.cleanup_scratch(deps.db, evo.id)
    passage_id = history.remember(deps.db, evo, deps.engine.embedders)
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo.id, {"memory_passage_id": passage_id})
        webhook = owner.load(conn, evo.agent_id).webhook_url
    _tell_owner(deps, evo, webhook)


def _tell_owner(deps: EvolutionDeps, evo: Evolution, webhook_url: str | None) -> None:
    """Publish the decision; a failure is logged and recorded, never raised (the decision stands)."""
    if deps.events is None:
        return
    detail_type, detail = notify.decision_event(evo)
    try:
        deps.events.publish(detail_type, detail, webhook_url)
        told: dict[str, object] = {"sent": True, "type": detail_type}
    except Exception as exc:
        logger.exception("could not tell the owner of an evolution decision", extra={"evolution_id": evo.id})
        told = {"sent": False, "type": detail_type, "error": f"{type(exc).__name__}: {exc}"[:500]}
    with deps.db.transaction() as conn:
        store.add_figures(conn, evo.id, {"notice": told})
