-- Scoped bearer tokens an admin issues for a tool or user (e.g. deploy tokens).
-- Only a hash of the secret is stored.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'tool')),
    scope TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX tokens_by_subject ON tokens(subject);
