-- MCP servers an organization registers (Letta's mcp_servers): streamable HTTP, SSE or stdio.
--
-- What a server needs to be reached with and which is secret (an auth token, custom header values,
-- a stdio command's environment) is one sealed JSON document (o/tools/secrets/envelope.py, bound to
-- the server's id), never plaintext; the names of the headers and variables are kept in the clear so
-- a response can show them with their values masked.
--
-- A server's tools are rows of `tools` (tool_type external_mcp, metadata.mcp.server_id), so they
-- are listed, attached to agents and versioned like any tool; deleting the server deletes them.
CREATE TABLE mcp_servers (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    server_name     text NOT NULL CHECK (length(server_name) BETWEEN 1 AND 200),
    server_type     text NOT NULL CHECK (server_type IN ('streamable_http', 'sse', 'stdio')),
    server_url      text,
    command         text,
    args            jsonb NOT NULL DEFAULT '[]'::jsonb,
    auth_header     text,
    sealed          bytea,
    has_auth_token  boolean NOT NULL DEFAULT false,
    header_names    jsonb NOT NULL DEFAULT '[]'::jsonb,
    env_names       jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- whether the last connect (create, update, refresh) listed its tools, and why not
    healthy         boolean NOT NULL DEFAULT false,
    last_error      text,
    checked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, server_name),
    CHECK ((server_type = 'stdio') = (command IS NOT NULL)),
    CHECK ((server_type = 'stdio') = (server_url IS NULL))
);
CREATE INDEX mcp_servers_org_created ON mcp_servers (organization_id, created_at, id);
-- a server's tools, found without reading the organization's others
CREATE INDEX tools_mcp_server ON tools ((metadata -> 'mcp' ->> 'server_id')) WHERE tool_type = 'external_mcp';
