-- The agent loop's durable state: where each run is (which step, which phase), what it
-- waits for, and each step's pending tool calls. A crashed worker resumes from here.

ALTER TABLE runs
    -- index of the step the run is working on (0-based); equals steps.step_index
    ADD COLUMN iteration        integer NOT NULL DEFAULT 0,
    -- what the loop does next; 'approval' means paused on a human decision
    ADD COLUMN next_action      text NOT NULL DEFAULT 'step'
        CHECK (next_action IN ('step', 'tools', 'approval', 'done', 'failed')),
    -- Step Functions task token of an execution waiting for an approval
    ADD COLUMN task_token       text,
    ADD COLUMN execution_arn    text,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN error            text;
CREATE INDEX runs_org_created ON runs (organization_id, created_at, id);
-- at most one run per agent waits for an approval; the API finds it by agent
CREATE UNIQUE INDEX runs_agent_awaiting ON runs (agent_id) WHERE next_action = 'approval';

ALTER TABLE steps
    -- the tool calls the LLM asked for in this step, as stored on its assistant message
    ADD COLUMN tool_calls       jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- tool_call_id -> {"approve": bool, "reason": str|null} once a human decided
    ADD COLUMN approvals        jsonb,
    -- the loop's decision once the step completed: 'step' (continue) or 'done'
    ADD COLUMN next_action      text,
    ADD COLUMN message_id       text;
