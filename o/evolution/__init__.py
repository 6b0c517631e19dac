"""Sleep-time compute and self-evolution (issue 7).

- :mod:`~o.evolution.revisions` — immutable, numbered revisions of what evolution may change
  (system, block layout and limits, tools and tool rules, model settings), diffs, apply, rollback.
- :mod:`~o.evolution.loop` — the evolution as durable steps (reflect, propose, shadow, gate, canary,
  evaluate, promote/rollback), driven in-process (:func:`~o.evolution.loop.run_local`) or by the state
  machine of :mod:`~o.evolution.statemachine` through ``functions/evolution/handler.py``.
- :mod:`~o.evolution.propose`, :mod:`~o.evolution.shadow`, :mod:`~o.evolution.evaluator`,
  :mod:`~o.evolution.history` — the proposer, side-effect-free replays, scoring and the gate, and the
  decision written into the agent's archival memory.
- :mod:`~o.evolution.rollout`, :mod:`~o.evolution.metrics`, :mod:`~o.evolution.routing` — the weighted
  Lambda alias and the local router, per-version outcome metrics, and which revision serves a live turn.
- :mod:`~o.evolution.sleeptime` — memory reorganization passes, their triggers, the local scheduler.
"""
