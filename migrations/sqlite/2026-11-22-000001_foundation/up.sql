-- Server-wide values the hub generates once and keeps (the JWT secret).
CREATE TABLE server_settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Login accounts (agents and admins). Customers are guests with tokens and have no row.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    company TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX users_company ON users (company);
