-- Steps carry what Letta shows of a model call (timings, cost, a trace, the user's feedback), and
-- identities (the people and organisations an agent serves) can be attached to agents and blocks.

ALTER TABLE steps
    -- when the step began (before its prompt was assembled); created_at is when its reply was stored
    ADD COLUMN started_at   timestamptz,
    -- time spent running the step's tools (approvals waited on excluded)
    ADD COLUMN tool_ms      real,
    -- USD from the checked-in price table (o/llm/pricing.py); NULL for a model it does not price
    ADD COLUMN cost_usd     double precision,
    -- what was asked of the provider and what it answered (no prompt text: that is in the messages)
    ADD COLUMN trace        jsonb,
    ADD COLUMN feedback     text CHECK (feedback IN ('positive', 'negative')),
    ADD COLUMN feedback_tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX steps_org_created ON steps (organization_id, created_at, id);

-- a step's feedback is one score in `feedback`, replaced when the user changes their mind
ALTER TABLE feedback ADD COLUMN step_id text;
CREATE UNIQUE INDEX feedback_step ON feedback (step_id) WHERE step_id IS NOT NULL;

CREATE TABLE identities (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    identifier_key  text NOT NULL,
    name            text NOT NULL,
    identity_type   text NOT NULL CHECK (identity_type IN ('org', 'user', 'other')),
    project_id      text,
    properties      jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, identifier_key)
);
CREATE INDEX identities_org_created ON identities (organization_id, created_at, id);

CREATE TABLE identity_agents (
    identity_id text NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    agent_id    text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (identity_id, agent_id)
);
CREATE INDEX identity_agents_agent ON identity_agents (agent_id);

CREATE TABLE identity_blocks (
    identity_id text NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    block_id    text NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    PRIMARY KEY (identity_id, block_id)
);
CREATE INDEX identity_blocks_block ON identity_blocks (block_id);
