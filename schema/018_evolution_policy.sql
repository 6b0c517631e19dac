-- The owner's evolution policy per agent (o/evolution/owner.py): what an evolution may change, its
-- token and dollar budgets per pass and per day, its schedule, approval gates and where to tell the owner.
CREATE TABLE evolution_policies (
    agent_id        text PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    policy          jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Attempts to change the evaluator (cases, judge, gate) from where the agent acts: its memory tools, its
-- proposals, an API call while its evolution runs. Refused, and kept here for the owner (o/tools/evaluator_lock.py).
CREATE TABLE evaluator_tampering (
    id              bigserial PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    evolution_id    text,
    source          text NOT NULL CHECK (source IN ('tool', 'proposal', 'api')),
    detail          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluator_tampering_agent ON evaluator_tampering (agent_id, created_at);
