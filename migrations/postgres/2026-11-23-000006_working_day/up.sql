-- Agents and admins as the hub last saw them: their display name (the REST view of a call
-- shows its owner by name, §6 `owner_name`, also once they are offline) and the status they
-- chose (§4 `agent_status`, kept across reconnects and restarts). `status` NULL: they never
-- chose, and start `available`. `busy` during a browser call is not stored here: it is the
-- hub's live view, and the chosen status returns when the call ends.
CREATE TABLE agents (
    company TEXT NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (company, user_id)
);
