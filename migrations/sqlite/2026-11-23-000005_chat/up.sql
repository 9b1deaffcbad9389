-- Chat (docs/protocol.md §8): conversations inside one company, their messages with a
-- gapless `seq`, and each reader's position.
--
-- A conversation's id is what the protocol names it (`support:<customer>`,
-- `direct:<a>:<b>`), unique inside its company. `last_seq` is the seq of its newest message:
-- the next message takes `last_seq + 1` inside the storing transaction, so seqs have no gaps
-- and no duplicates however many senders race.
CREATE TABLE conversations (
    company TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('support', 'direct')),
    -- support: the customer; direct: the two staff users, in byte order.
    customer_id TEXT,
    member_a TEXT,
    member_b TEXT,
    -- Display names (and staff roles) as last seen, for the inbox.
    customer_name TEXT,
    member_a_name TEXT,
    member_b_name TEXT,
    member_a_role TEXT,
    member_b_role TEXT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (company, id)
);

-- The inbox: a company's conversations, latest activity first.
CREATE INDEX conversations_inbox ON conversations (company, last_message_at DESC, id DESC);

CREATE TABLE messages (
    company TEXT NOT NULL,
    conversation TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    sender_role TEXT NOT NULL,
    text TEXT NOT NULL,
    -- A JSON object of at most 1 KiB, carried unchanged; NULL when not given.
    meta TEXT,
    client_id TEXT,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (company, conversation, seq)
);

-- A retried send (same sender, conversation and client_id) finds the stored message.
CREATE UNIQUE INDEX messages_client_id
    ON messages (company, conversation, sender_id, client_id) WHERE client_id IS NOT NULL;
-- Retention (`--message-retention-days`) deletes by age.
CREATE INDEX messages_sent_at ON messages (sent_at);

-- How far each reader has read each conversation; only ever moves forward.
CREATE TABLE read_positions (
    company TEXT NOT NULL,
    conversation TEXT NOT NULL,
    user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (company, conversation, user_id)
);
