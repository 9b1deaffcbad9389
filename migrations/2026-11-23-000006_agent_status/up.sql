-- An agent's chosen status (§4 `agent_status`), remembered across reconnects and restarts.
-- No row: the agent never chose, and starts `available`. `busy` during a browser call is not
-- stored here: it is the hub's live view, and the chosen status returns when the call ends.
CREATE TABLE agent_statuses (
    company TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (company, user_id)
) WITHOUT ROWID;
