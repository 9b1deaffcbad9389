-- Calls: telephony calls reported by providers and browser calls from the landing page.
-- `status_rank` only grows (queued 0, initiated 1, ringing 2, in-progress 3, ended/failed 4);
-- every change is a conditional update on it, so nothing can move a call backwards.
CREATE TABLE calls (
    id TEXT PRIMARY KEY NOT NULL,
    company TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_call_id TEXT,
    owner_id TEXT,
    parties TEXT NOT NULL DEFAULT '[]',
    direction TEXT,
    from_number TEXT,
    to_number TEXT,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    ended_reason TEXT,
    last_sequence BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    ended_at BIGINT
);

CREATE INDEX calls_company_created ON calls (company, created_at DESC, id DESC);

-- External ids of a call, per company: a Twilio CallSid, a Vapi call id, a registration.
-- A Vapi call whose phoneCallProviderId is a CallSid gets both keys, so it stays one call.
CREATE TABLE call_keys (
    company TEXT NOT NULL,
    provider TEXT NOT NULL,
    external_id TEXT NOT NULL,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    PRIMARY KEY (company, provider, external_id)
);

CREATE INDEX call_keys_lookup ON call_keys (provider, external_id);

-- Every event received for a call, applied or not (duplicates, stale and late ones too).
CREATE TABLE call_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    call_id TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    sequence BIGINT,
    applied BOOLEAN NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE INDEX call_events_call ON call_events (call_id, id);
