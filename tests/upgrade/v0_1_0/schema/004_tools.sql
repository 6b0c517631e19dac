-- Custom tools: Letta's remaining tool fields, every version of a tool's source, and the
-- per-agent variables (secrets) handed to that agent's tool runs and to nothing else.

ALTER TABLE tools
    ADD COLUMN args_json_schema          jsonb,
    ADD COLUMN pip_requirements          jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN npm_requirements          jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN default_requires_approval boolean NOT NULL DEFAULT false,
    ADD COLUMN enable_parallel_execution boolean NOT NULL DEFAULT false;
CREATE INDEX tools_org_created ON tools (organization_id, created_at, id);

-- One row per version of a tool, the current one included, so an agent's tool set can be
-- pinned, compared and rolled back by evolution. Rows are never updated.
CREATE TABLE tool_versions (
    tool_id         text NOT NULL REFERENCES tools(id) ON DELETE CASCADE,
    version         bigint NOT NULL,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL,
    description     text,
    source_code     text,
    json_schema     jsonb NOT NULL,
    return_char_limit integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tool_id, version)
);

-- Letta's agent tool_exec_environment_variables / secrets.
CREATE TABLE agent_tool_env (
    agent_id    text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (key ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
    value       text NOT NULL,
    description text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, key)
);
