ALTER TABLE calendar_oauth_states DROP COLUMN browser_binding;
ALTER TABLE users DROP COLUMN disabled_at;
