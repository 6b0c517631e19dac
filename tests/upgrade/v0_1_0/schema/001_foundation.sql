-- Foundation: tenants, keys, agents, memory blocks, messages, archival passages, tools, runs, steps.
-- Ids are text in Letta's form ("agent-<uuid>") so they pass through the API unchanged.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE organizations (
    id          text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text,
    -- sha256 of the secret; the secret itself is shown once and never stored
    key_hash        text NOT NULL UNIQUE,
    prefix          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE agents (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text,
    agent_type       text NOT NULL DEFAULT 'memgpt_v2_agent',
    system           text NOT NULL DEFAULT '',
    llm_config       jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding_config jsonb NOT NULL DEFAULT '{}'::jsonb,
    tool_rules       jsonb NOT NULL DEFAULT '[]'::jsonb,
    tags             text[] NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- bumped on every change that alters the compiled prompt (blocks, system, tools)
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_org_created ON agents (organization_id, created_at, id);
CREATE INDEX agents_tags ON agents USING gin (tags);

CREATE TABLE blocks (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    label           text NOT NULL,
    value           text NOT NULL DEFAULT '',
    char_limit      integer NOT NULL DEFAULT 20000 CHECK (char_limit > 0),
    description     text,
    read_only       boolean NOT NULL DEFAULT false,
    is_template     boolean NOT NULL DEFAULT false,
    template_name   text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (char_length(value) <= char_limit)
);
CREATE INDEX blocks_org_created ON blocks (organization_id, created_at, id);
CREATE INDEX blocks_org_label ON blocks (organization_id, label);

-- A block may be shared by several agents; within one agent a label is unique.
CREATE TABLE agent_blocks (
    agent_id   text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    block_id   text NOT NULL REFERENCES blocks(id) ON DELETE CASCADE,
    label      text NOT NULL,
    position   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, block_id),
    UNIQUE (agent_id, label)
);
CREATE INDEX agent_blocks_block ON agent_blocks (block_id);

CREATE TABLE runs (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'created',
    stop_reason     text,
    request         jsonb NOT NULL DEFAULT '{}'::jsonb,
    usage           jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX runs_agent_created ON runs (agent_id, created_at);

CREATE TABLE steps (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    run_id          text REFERENCES runs(id) ON DELETE CASCADE,
    step_index      integer NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    model           text,
    usage           jsonb NOT NULL DEFAULT '{}'::jsonb,
    stop_reason     text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    UNIQUE (run_id, step_index)
);

CREATE TABLE messages (
    -- seq orders an agent's history; ids are opaque
    seq             bigserial UNIQUE,
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool', 'approval')),
    content         jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- plain text of the content parts, for search
    text            text NOT NULL DEFAULT '',
    name            text,
    tool_calls      jsonb,
    tool_call_id    text,
    tool_returns    jsonb,
    step_id         text REFERENCES steps(id) ON DELETE SET NULL,
    run_id          text REFERENCES runs(id) ON DELETE SET NULL,
    -- position of the message inside its step; with step_id it makes a replayed step a no-op
    step_position   integer,
    otid            text,
    sender_id       text,
    group_id        text,
    in_context      boolean NOT NULL DEFAULT true,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (step_id, step_position)
);
CREATE INDEX messages_agent_seq ON messages (agent_id, seq);
CREATE INDEX messages_agent_context ON messages (agent_id, seq) WHERE in_context;

CREATE TABLE passages (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id        text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    text            text NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding_model text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX passages_agent_created ON passages (agent_id, created_at);

CREATE TABLE tools (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text,
    tool_type       text NOT NULL DEFAULT 'custom',
    source_type     text NOT NULL DEFAULT 'python',
    source_code     text,
    json_schema     jsonb NOT NULL DEFAULT '{}'::jsonb,
    tags            text[] NOT NULL DEFAULT '{}',
    return_char_limit integer NOT NULL DEFAULT 6000,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

CREATE TABLE agent_tools (
    agent_id text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    tool_id  text NOT NULL REFERENCES tools(id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, tool_id)
);
CREATE INDEX agent_tools_tool ON agent_tools (tool_id);
