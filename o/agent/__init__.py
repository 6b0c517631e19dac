"""The agent: its lifecycle and its execution loop.

How a message becomes a reply (each module says why it is built the way it is):

- :mod:`o.agent.runs` — the API side: a run is created with the caller's messages in one
  transaction; approvals and cancels are recorded on it; LettaResponse/Run shapes.
- :mod:`o.agent.step` — ONE step in two durable phases (LLM call; tool calls), keyed by
  ``(run_id, step_index)``; :func:`o.agent.step.advance` is the single entry point that both
  the agent-step Lambda (``functions/agent_step``) and the local runner call.
- :mod:`o.agent.runner` — loops over ``advance`` locally, or starts/releases Step Functions
  executions in AWS; ``resume_stale`` finishes runs a dead process left behind.
- :mod:`o.agent.prompt` (system prompt compile + cache), :mod:`o.agent.context` (context
  window and summaries), :mod:`o.agent.tool_rules` (Letta's tool rules),
  :mod:`o.agent.tools` (which tools, and the sandbox for user tools),
  :mod:`o.agent.transcript` (stored messages → chat messages), :mod:`o.agent.stream`
  (token deltas → Letta stream chunks), :mod:`o.agent.engine` (the wiring).
"""
