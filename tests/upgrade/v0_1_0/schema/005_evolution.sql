-- Self-evolution (issue 7): revisions, evaluation suites, evolution runs and their history,
-- feedback, per-revision outcomes (local canary metrics) and sleep-time passes.

-- What evolution may change about an agent, frozen: system text, block layout and limits (never the
-- values), tool ids and tool rules, model settings. Numbered per agent from 1; never updated.
CREATE TABLE agent_revisions (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    number          integer NOT NULL CHECK (number >= 1),
    parent          integer,
    config          jsonb NOT NULL,
    config_hash     text NOT NULL,
    diff            jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- label -> id of the block row that carried it when the revision was taken; not part of the config
    -- (values are memory), used to re-attach the same block, value intact, on rollback
    block_ids       jsonb NOT NULL DEFAULT '{}'::jsonb,
    author          text NOT NULL CHECK (author IN ('user', 'agent')),
    rationale       text NOT NULL DEFAULT '',
    evolution_id    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, number)
);

CREATE FUNCTION o_revisions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agent revisions are immutable (revision % of %)', OLD.number, OLD.agent_id
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER agent_revisions_no_update BEFORE UPDATE ON agent_revisions
    FOR EACH ROW EXECUTE FUNCTION o_revisions_immutable();

-- The revision the agent runs; NULL until the first revision is taken (lazily, from its config).
ALTER TABLE agents ADD COLUMN revision integer;

-- The evaluator: cases, gate thresholds and judge instructions. A candidate may never change it;
-- each evolution records its hash at the start and refuses to go on if it differs later.
CREATE TABLE evaluation_suites (
    agent_id        text PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cases           jsonb NOT NULL DEFAULT '[]'::jsonb,
    gate            jsonb NOT NULL DEFAULT '{}'::jsonb,
    judge           jsonb NOT NULL DEFAULT '{}'::jsonb,
    hash            text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One evolution attempt and, once decided, its history entry (decision, diff, figures).
CREATE TABLE evolutions (
    id                 text PRIMARY KEY,
    organization_id    text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id           text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    status             text NOT NULL DEFAULT 'started' CHECK (status IN (
        'started', 'reflected', 'proposed', 'shadowed', 'gated', 'canary', 'promoted', 'rolled_back')),
    trigger            text NOT NULL DEFAULT 'manual',
    base_revision      integer NOT NULL,
    candidate_revision integer,
    rationale          text,
    diff               jsonb,
    reflection         jsonb,
    figures            jsonb NOT NULL DEFAULT '{}'::jsonb,
    evaluator_hash     text NOT NULL,
    budget             jsonb NOT NULL DEFAULT '{}'::jsonb,
    tokens_used        integer NOT NULL DEFAULT 0,
    canary             jsonb,
    -- which router the canary occupies ('lambda:<function>:<alias>' or 'local:<agent_id>')
    canary_slot        text,
    decision           text CHECK (decision IN ('promoted', 'rolled_back')),
    reason             text,
    execution_arn      text,
    stop_requested     boolean NOT NULL DEFAULT false,
    deadline           timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz
);
CREATE INDEX evolutions_agent_created ON evolutions (agent_id, created_at, id);
-- one evolution in flight per agent, one canary per router slot (alias) at a time
CREATE UNIQUE INDEX evolutions_one_active ON evolutions (agent_id) WHERE completed_at IS NULL;
CREATE UNIQUE INDEX evolutions_one_canary ON evolutions (canary_slot) WHERE status = 'canary';

CREATE TABLE evolution_events (
    id           bigserial PRIMARY KEY,
    evolution_id text NOT NULL REFERENCES evolutions(id) ON DELETE CASCADE,
    phase        text NOT NULL,
    message      text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evolution_events_evolution ON evolution_events (evolution_id, id);

-- A user's score of a response; revision says which configuration produced it.
CREATE TABLE feedback (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    run_id          text,
    message_id      text,
    score           real NOT NULL CHECK (score >= 0 AND score <= 1),
    comment         text,
    revision        integer,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_agent_created ON feedback (agent_id, created_at);

-- Outcome of each live turn per revision: the local canary's metrics (AWS uses CloudWatch as well).
CREATE TABLE revision_outcomes (
    id           bigserial PRIMARY KEY,
    agent_id     text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    revision     integer NOT NULL,
    request_id   text,
    ok           boolean NOT NULL,
    latency_ms   real NOT NULL DEFAULT 0,
    tokens       integer NOT NULL DEFAULT 0,
    score        real,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revision_outcomes_agent ON revision_outcomes (agent_id, revision, created_at);

CREATE TABLE sleeptime_passes (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    trigger         text NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    -- the newest message seq this pass has read; the next pass starts after it
    through_seq     bigint NOT NULL DEFAULT 0,
    figures         jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX sleeptime_passes_agent ON sleeptime_passes (agent_id, started_at);
CREATE UNIQUE INDEX sleeptime_one_running ON sleeptime_passes (agent_id) WHERE status = 'running';
