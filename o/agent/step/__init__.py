"""One step of the agent loop, in durable phases. The Step Functions task and the local runner call this.

A step is split where a crash could otherwise lose or duplicate work:

* phase ``step`` (:mod:`~o.agent.step.llm_phase`): call the LLM, then in ONE transaction store the
  step row (keyed by ``(run_id, step_index)``, with a derived id) and the assistant message with
  its tool calls, and move the run to ``tools`` (or ``approval``, or ``done``). Replaying
  it for a step that exists never calls the LLM again.
* phase ``tools`` (:mod:`~o.agent.step.tools_phase`): each tool call's result is stored at
  ``(step_id, position)``; a built-in's memory edit commits in the same transaction as its
  result, so a replay skips calls that already have one and never applies an edit twice.
  The last result commits together with the step's completion and the decision whether the
  loop goes on (``request_heartbeat``, tool rules, ``max_steps``, cancel).

What the step decides is pure and tested without a database: :mod:`~o.agent.step.reply` (may the
step call the LLM, what it offers, what the reply means), :mod:`~o.agent.step.calls` (may a call
run), :mod:`~o.agent.step.continuation` (does the loop go on), :mod:`~o.agent.step.replay` (what a
stored step reports next) and :mod:`~o.agent.step.rows` (what a step writes). The phases are the
thin shell that reads, asks and writes around them.

Which revision of the agent's configuration serves a run is decided on its first step and kept in
``runs.metadata`` (:mod:`o.agent.serving`): a canary's traffic split happens here, per run, and
the run's end records its outcome for that revision in the same transaction.

Every function takes its dependencies (:class:`StepDeps`) and returns an
:class:`Outcome` shaped like the state machine's contract.
"""

from o.agent.step import conversation
from o.agent.step.actions import advance, execute
from o.agent.step.continuation import DEFAULT_MAX_STEPS
from o.agent.step.contract import Outcome, SimulatedCrash, step_id_for
from o.agent.step.deps import StepDeps
from o.agent.step.llm_phase import llm_phase
from o.agent.step.state import finish_run
from o.agent.step.tools_phase import tools_phase

__all__ = [
    "DEFAULT_MAX_STEPS",
    "Outcome",
    "SimulatedCrash",
    "StepDeps",
    "advance",
    "conversation",
    "execute",
    "finish_run",
    "llm_phase",
    "step_id_for",
    "tools_phase",
]
