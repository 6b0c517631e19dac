-- Conversations: one agent, many concurrent threads over one shared memory (Letta's `conversations`).
-- Each conversation has its own in-context messages, summary and optional model / context-window
-- override; blocks, archival memory and tools stay the agent's. The agent's own history (Letta's
-- `default` conversation, the agent-level message routes) is the rows whose conversation_id is NULL.
CREATE TABLE conversations (
    id                   text PRIMARY KEY,
    organization_id      text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id             text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    summary              text,
    description          text,
    -- overrides of the agent's model for this conversation's runs
    model                text,
    model_settings       jsonb,
    context_window_limit integer CHECK (context_window_limit > 0),
    -- what those overrides change in the agent's llm_config (applied over it on each step)
    llm_overrides        jsonb NOT NULL DEFAULT '{}'::jsonb,
    hidden               boolean NOT NULL DEFAULT false,
    archived             boolean NOT NULL DEFAULT false,
    archived_at          timestamptz,
    -- the last send to it (creation until then): a list can be ordered by it
    last_message_at      timestamptz NOT NULL DEFAULT now(),
    -- the conversation this one was forked from (NULL: created, or forked from the default one)
    forked_from          text,
    -- deleted conversations are gone from the API; their messages stay in the agent's recall
    deleted_at           timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_agent_created ON conversations (agent_id, created_at, id);
CREATE INDEX conversations_org_created ON conversations (organization_id, created_at, id);

ALTER TABLE runs ADD COLUMN conversation_id text REFERENCES conversations(id) ON DELETE CASCADE;
ALTER TABLE messages ADD COLUMN conversation_id text REFERENCES conversations(id) ON DELETE CASCADE;
CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq) WHERE conversation_id IS NOT NULL;
CREATE INDEX runs_conversation_active ON runs (conversation_id)
    WHERE conversation_id IS NOT NULL AND next_action IN ('step', 'tools', 'approval');

-- A message a run stores belongs to the run's conversation. Set here, once, so every writer of the
-- loop (input, replies, tool results, approvals) keeps that invariant without naming it.
CREATE FUNCTION messages_conversation_of_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.conversation_id INTO NEW.conversation_id FROM runs r WHERE r.id = NEW.run_id;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_conversation_of_run BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.run_id IS NOT NULL AND NEW.conversation_id IS NULL)
    EXECUTE FUNCTION messages_conversation_of_run();

-- At most one run per conversation waits for an approval (it was one per agent).
DROP INDEX runs_agent_awaiting;
CREATE UNIQUE INDEX runs_conversation_awaiting ON runs (agent_id, coalesce(conversation_id, ''))
    WHERE next_action = 'approval';
