"""How a step writes down its progress: events, spent tokens, and a result that a stop may have overtaken.

Each step reads the evolution, does its work, and records the result with a status change only if
the evolution is still where the step found it: a stop or a rollback in between wins.
"""

from __future__ import annotations

from typing import Any

from o.errors import NotFound
from o.evolution import policy
from o.evolution.deps import EvolutionDeps, Stop
from o.store import evolution as store
from o.store.db import Conn
from o.store.evolution import Evolution, EvolutionStatus


def load(deps: EvolutionDeps, evolution_id: str) -> Evolution:
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id)
    if evo is None:
        raise NotFound(f"evolution {evolution_id} not found")
    return evo


def event(
    deps: EvolutionDeps, conn: Conn, evolution_id: str, phase: str, message: str, data: dict[str, Any] | None = None
) -> None:
    store.add_event(conn, evolution_id, phase, message, data)
    if deps.progress is not None:
        deps.progress(evolution_id, phase, message)


def spend(deps: EvolutionDeps, evo: Evolution, tokens: int, usd: float = 0.0) -> tuple[int, float]:
    """Count ``tokens`` and their list-price ``usd`` against the evolution; raises Stop once its budget is
    exhausted, else returns (tokens, dollars) spent so far."""
    with deps.db.transaction() as conn:
        used, usd_used = store.add_spend(conn, evo.id, tokens, usd)
    reason = policy.token_limit_reached(evo, used, usd_used)
    if reason is not None:
        raise Stop(reason)
    return used, usd_used


def claim(conn: Conn, evo: Evolution, expected: EvolutionStatus) -> Evolution | None:
    """Lock the evolution and read it if it is still undecided at ``expected``; None if a stop got there first."""
    current = store.get(conn, evo.id, for_update=True)
    assert current is not None
    return current if current.status == expected and not current.completed else None


def advance(
    deps: EvolutionDeps,
    evo: Evolution,
    expected: EvolutionStatus,
    changes: dict[str, Any],
    phase: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> Evolution | None:
    """Record a step's result if the evolution is still at ``expected``; None when a stop got there first."""
    with deps.db.transaction() as conn:
        if claim(conn, evo, expected) is None:
            return None
        row = store.update(conn, evo.id, changes)
        event(deps, conn, evo.id, phase, message, data)
        return row
