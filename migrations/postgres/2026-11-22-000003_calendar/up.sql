-- A user's connected Google Calendar; the refresh token is encrypted (see calendar::crypto).
CREATE TABLE calendar_connections (
    company TEXT NOT NULL,
    user_id TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    calendar_id TEXT,
    time_zone TEXT,
    connected_at BIGINT NOT NULL,
    PRIMARY KEY (company, user_id)
);

-- Pending consents: a short-lived, single-use `state` bound to the user who asked, with the
-- PKCE verifier of that consent.
CREATE TABLE calendar_oauth_states (
    state TEXT PRIMARY KEY NOT NULL,
    company TEXT NOT NULL,
    user_id TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
