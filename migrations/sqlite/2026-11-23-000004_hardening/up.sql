-- A disabled account's tokens stop working and its connections close (`switchboard user
-- disable`); NULL = enabled.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- The calendar connect flow is bound to the browser that started it: a hash of the value of
-- the `sb_oauth` cookie set with the consent URL. A callback without it stores nothing.
ALTER TABLE calendar_oauth_states ADD COLUMN browser_binding TEXT NOT NULL DEFAULT '';
