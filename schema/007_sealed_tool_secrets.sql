-- Tool variables (Letta's tool_exec_environment_variables / secrets) are encrypted at rest.
--
-- `sealed` holds the value as an envelope (o/tools/secrets/envelope.py): AES-256-GCM under a data key,
-- with that data key wrapped by KMS on AWS or by the key file in the data directory locally. The
-- database never holds the key, so a dump or a read replica alone reveals no secret.
--
-- The plaintext `value` of rows written by earlier releases is sealed by `o serve` / `o migrate`
-- right after this migration (o.runtime.seal_plaintext_secrets), which needs the key and so cannot
-- be SQL; until then those rows are still readable, so no tool run breaks in between.
ALTER TABLE agent_tool_env
    ALTER COLUMN value DROP NOT NULL,
    ADD COLUMN sealed bytea,
    ADD CONSTRAINT agent_tool_env_one_form CHECK (num_nonnulls(value, sealed) = 1);
-- finds the rows still in plaintext (none, once sealed) without reading the table
CREATE INDEX agent_tool_env_plaintext ON agent_tool_env (agent_id) WHERE value IS NOT NULL;
