-- The dashboard (engineer H4a): browser sessions, sign-ups and their e-mail
-- confirmation, SSH keys, and Toolforge membership requests.

-- A browser session. The cookie holds a random id; only its SHA-256 is stored, so a
-- copy of the database cannot be replayed as a cookie. `user_name` is NULL for an
-- anonymous visitor (who still needs a CSRF token for the log-in and sign-up forms).
-- `flash` holds the messages shown on the next page, one `level<TAB>text` per line.
CREATE TABLE dashboard_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_name TEXT REFERENCES users(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    flash TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions(expires_at);
CREATE INDEX dashboard_sessions_by_user ON dashboard_sessions(user_name);

-- Users who signed up on the dashboard. A user without a row was made by an admin
-- (`toolforged admin user create`, or the first start's `admin`): confirmed and a
-- member by the admin's word. `member_since` is set when a membership request is
-- approved.
CREATE TABLE dashboard_signups (
    user_name TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    signed_up_at INTEGER NOT NULL,
    email_confirmed_at INTEGER,
    member_since INTEGER
);

-- Single-use e-mail confirmation tokens: only the SHA-256 of the token is stored.
CREATE TABLE email_confirmations (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX email_confirmations_by_user ON email_confirmations(user_name);

-- SSH public keys of users: type, the base64 blob as given, and its SHA256 fingerprint.
CREATE TABLE ssh_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    key_type TEXT NOT NULL,
    key_blob TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    bits INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (user_name, fingerprint)
);

-- Toolforge membership requests (Striker's AccessRequest): status `pending`,
-- `feedback` (needed), `approved` or `declined`; suppressed requests are seen by admins
-- only.
CREATE TABLE access_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'feedback', 'approved', 'declined')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    resolved_by TEXT,
    resolved_at INTEGER,
    suppressed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_requests_by_user ON access_requests(user_name);
CREATE INDEX access_requests_by_status ON access_requests(status, created_at);

-- Comments on a membership request, by the applicant or an admin.
CREATE TABLE access_request_comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES access_requests(id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX access_request_comments_by_request ON access_request_comments(request_id, id);
