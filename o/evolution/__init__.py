"""Sleep-time compute and self-evolution (issue 7).

- :mod:`~o.evolution.loop` — start an evolution, run one step (:func:`~o.evolution.loop.step`), and
  the drivers: in-process (:func:`~o.evolution.loop.run_local`, :func:`~o.evolution.loop.launch`,
  :func:`~o.evolution.loop.resume_incomplete`) or the state machine of :mod:`~o.evolution.statemachine`
  through ``functions/evolution/handler.py``.
- :mod:`~o.evolution.policy` — the pure decisions: budget, limits, what is due, the gate and canary verdicts.
- :mod:`~o.evolution.phases` (reflect, propose, shadow, gate, canary, evaluate),
  :mod:`~o.evolution.decision` (promote, rollback), :mod:`~o.evolution.journal` (recording a step's
  result), :mod:`~o.evolution.deps` (what a step needs and answers).
- :mod:`~o.evolution.propose`, :mod:`~o.evolution.shadow`, :mod:`~o.evolution.evaluator`,
  :mod:`~o.evolution.history` — the proposer, side-effect-free replays, scoring and the gate, and the
  decision written into the agent's archival memory.
- :mod:`~o.evolution.rollout`, :mod:`~o.evolution.metrics`, :mod:`~o.evolution.routing` — the weighted
  Lambda alias and the local router, per-version outcome metrics, and which revision serves a live turn.
- :mod:`~o.evolution.sleeptime` — memory reorganization passes, their triggers, the local scheduler.
"""
