-- Letta's agent fields that are settings of the agent rather than of its model (issue 14, item 2).
--
-- timezone: an IANA name; the system prompt shows dates and times in it (o/agent/prompt.py).
-- enable_sleeptime: whether the automatic sleep-time passes (every N messages, on the schedule) run
--   for the agent; true keeps what every agent did before this migration.
-- base_tools: the built-in tools the agent is offered (o/agent/tools.py); NULL: the built-ins of its type
--   (what every agent had before). Letta's include_base_tools=false gives an empty array, plus the
--   built-ins the create request names in `tools`.
ALTER TABLE agents
    ADD COLUMN timezone           text    NOT NULL DEFAULT 'UTC',
    ADD COLUMN enable_sleeptime   boolean NOT NULL DEFAULT true,
    ADD COLUMN base_tools         text[];
