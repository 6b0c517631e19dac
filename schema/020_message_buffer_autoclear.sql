-- Letta's message_buffer_autoclear: when true, each finished run takes that conversation's messages out of
-- the context window (they stay in recall and searchable); the agent keeps what it knows through memory.
ALTER TABLE agents ADD COLUMN message_buffer_autoclear boolean NOT NULL DEFAULT false;
