"""Human approval gates: an evolution whose owner asks for it waits before its canary or its promotion.

The wait is durable: the request is in the evolution's figures (``approvals``), the evolution keeps its
status, and the ``await`` action (a Wait state and a task in the state machine, a sleep in the
in-process driver) looks again until the owner decides through the API or CLI, or until the
evolution's time budget ends it in rollback. While a promotion waits the canary keeps its weight and
is judged again at each look (:func:`o.evolution.phases.await_approval`): bad evidence rolls it back.
"""

from __future__ import annotations

from typing import Any, Literal

from o.errors import Conflict, NotFound
from o.evolution import owner, policy
from o.evolution.decision import promote, rollback
from o.evolution.deps import EvolutionDeps, StepResult
from o.evolution.journal import event, load
from o.store import evolution as store
from o.store.evolution import Evolution, EvolutionStatus

Gate = Literal["canary", "promotion"]


def _approvals(evo: Evolution) -> dict[str, Any]:
    return dict(evo.figures.get("approvals") or {})


def wait_seconds(evo: Evolution) -> int:
    """How long to wait before looking again: a bake round, at least a second."""
    return max(1, int(evo.budget["bake_seconds"]))


def required(deps: EvolutionDeps, evo: Evolution, gate: Gate) -> bool:
    """Whether ``gate`` must wait for the owner: the owner's policy asks for it and it is not yet approved."""
    with deps.db.transaction() as conn:
        wanted = owner.load(conn, evo.agent_id).needs_approval(gate)
    return wanted and _approvals(evo).get(gate, {}).get("status") != "approved"


def request(deps: EvolutionDeps, evo: Evolution, gate: Gate, reason: str) -> StepResult:
    """Record that ``gate`` waits for the owner (once) and tell the driver to wait."""
    approvals = _approvals(evo)
    if gate not in approvals:
        with deps.db.transaction() as conn:
            pending = {"status": "pending", "reason": reason, "requested_at": deps.clock().isoformat()}
            store.add_figures(conn, evo.id, {"approvals": {**approvals, gate: pending}})
            event(deps, conn, evo.id, "awaiting_approval", f"the {gate} waits for the owner's approval: {reason}")
    return StepResult(evo.id, evo.status, "await", wait_seconds(evo))


def await_step(deps: EvolutionDeps, evo: Evolution) -> StepResult:
    """The ``await`` action: still waiting, rejected (rollback), or approved (go on with what waited)."""
    approvals = _approvals(evo)
    statuses = {gate: a.get("status") for gate, a in approvals.items()}
    if "pending" in statuses.values():
        return StepResult(evo.id, evo.status, "await", wait_seconds(evo))
    for gate, status in statuses.items():
        if status == "rejected":
            comment = approvals[gate].get("comment") or "no reason given"
            return rollback(deps, evo.id, f"the owner rejected the {gate}: {comment}")
    if statuses.get("promotion") == "approved" and evo.status == EvolutionStatus.CANARY:
        return promote(deps, evo, f"approved by the owner; {approvals['promotion']['reason']}")
    return StepResult(evo.id, evo.status, policy.due_action(evo), 0)


def decide(
    deps: EvolutionDeps, organization_id: str, evolution_id: str, approve: bool, comment: str | None
) -> Evolution:
    """The owner's decision on the gate the evolution waits at; Conflict when it waits at none."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=organization_id, for_update=True)
        if evo is None:
            raise NotFound(f"evolution {evolution_id} not found")
        approvals = _approvals(evo)
        pending = [gate for gate, a in approvals.items() if a.get("status") == "pending"]
        if evo.completed and pending:
            # e.g. the canary turned bad while its promotion waited: there is nothing left to approve
            decision = evo.decision.value.replace("_", " ") if evo.decision is not None else "ended"
            raise Conflict(
                f"evolution {evolution_id} was {decision} while its {pending[0]} waited for approval "
                f"({evo.reason or 'no reason recorded'}); there is nothing left to approve"
            )
        if evo.completed or not pending:
            raise Conflict(f"evolution {evolution_id} is not waiting for an approval")
        gate = pending[0]
        decided = {
            "status": "approved" if approve else "rejected",
            "comment": comment,
            "decided_at": deps.clock().isoformat(),
        }
        approvals[gate] = {**approvals[gate], **decided}
        store.add_figures(conn, evolution_id, {"approvals": approvals})
        event(
            deps,
            conn,
            evolution_id,
            "approval",
            f"the owner {decided['status']} the {gate}" + (f": {comment}" if comment else ""),
        )
    return load(deps, evolution_id)
