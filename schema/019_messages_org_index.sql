-- GET /v1/messages/ pages through an organization's messages by seq: answered by this index instead of
-- a scan of every organization's history.
CREATE INDEX messages_org_seq ON messages (organization_id, seq);
