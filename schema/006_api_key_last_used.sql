-- When each API key was last used, for `o keys list`. Written at most once a minute per key, in the
-- statement that authenticates the request, so a busy key costs no extra write per request.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
