"""One sleep-time pass over one agent: claim it, consolidate archival memory, let the model reorganize
memory (:mod:`o.evolution.sleeptime.rethink`), record the figures, and maybe start an evolution."""

from __future__ import annotations

import time

from o.config import SleeptimeSettings
from o.errors import Conflict, NotFound
from o.evolution import evaluator, loop
from o.evolution.deps import EvolutionDeps
from o.evolution.sleeptime.dedupe import dedupe_archival, dedupe_near
from o.evolution.sleeptime.result import PassResult
from o.evolution.sleeptime.rethink import reorganize
from o.ids import new_id
from o.observability import logger
from o.store import agents as agent_store
from o.store import evolution as evolution_store
from o.store import sleeptime as sleeptime_store


def run_pass(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    trigger: str = "manual",
    policy: SleeptimeSettings | None = None,
) -> PassResult:
    """Run one pass now; raises NotFound for an unknown agent and Conflict while another pass runs."""
    policy = policy or SleeptimeSettings()
    pass_id = new_id("sleeptime")
    with deps.db.transaction() as conn:
        if agent_store.get(conn, organization_id, agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
        sleeptime_store.claim_pass(conn, pass_id, organization_id, agent_id, trigger, policy.max_seconds * 2)
    result = PassResult(pass_id, agent_id, trigger, "running")
    started = time.monotonic()
    try:
        result.duplicates_removed = dedupe_archival(deps.db, agent_id) + dedupe_near(
            deps.db, agent_id, similarity=policy.near_duplicate_similarity, window=policy.archival_window
        )
        reorganize(deps, organization_id, agent_id, policy, result, started)
        result.status = "completed"
    except Exception as exc:
        # the traceback only at debug level: the scheduler retries a failing pass and logs each failure
        # in one line (o.evolution.sleeptime.backoff); the result carries the error to every caller
        logger.debug("sleep-time pass failed", exc_info=True, extra={"agent_id": agent_id})
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = round(time.monotonic() - started, 3)
    with deps.db.transaction() as conn:
        sleeptime_store.finish_pass(
            conn,
            pass_id,
            status=result.status,
            error=result.error,
            figures=result.figures(),
            through_seq=result.through_seq,
        )
    if result.status == "completed":
        result.evolution_id = _maybe_evolve(deps, organization_id, agent_id, policy)
    return result


def evolution_due(completed_passes: int, every_n_passes: int, has_cases: bool, evolving: bool) -> bool:
    """Start an evolution after every N-th completed pass, if the agent has evaluation cases and none runs."""
    return bool(every_n_passes) and completed_passes % every_n_passes == 0 and has_cases and not evolving


def _maybe_evolve(deps: EvolutionDeps, organization_id: str, agent_id: str, policy: SleeptimeSettings) -> str | None:
    if not policy.evolve_every_n_passes:
        return None
    with deps.db.transaction() as conn:
        done = sleeptime_store.completed_passes(conn, agent_id)
        suite = evaluator.load_suite(conn, agent_id)
        active = evolution_store.active_for_agent(conn, agent_id)
    if not evolution_due(done, policy.evolve_every_n_passes, bool(suite.cases), active is not None):
        return None
    try:
        evo = loop.start(deps, organization_id, agent_id, trigger="sleeptime")
    except Conflict:
        return None
    loop.launch(deps, evo.id)
    return evo.id
