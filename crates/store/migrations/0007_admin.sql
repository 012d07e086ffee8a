-- Admin procedures (engineer H3): the audit log, banned addresses, disabled tools'
-- schedules and locked users.

-- Every admin action, who did it, on what and when. Written in the same transaction as
-- the change where the store makes the change itself (bans, disable/enable, user flags),
-- right after it otherwise. `detail` never holds a secret or a password.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    -- `unix:<user>` for the admin socket, the user name for the dashboard, `toolforged`
    -- for the daemon's own scheduled actions.
    actor TEXT NOT NULL,
    -- The command, e.g. `ban-ip`, `tool disable`, `user lock`.
    action TEXT NOT NULL,
    -- What it acted on: a tool, a user, a network, a token id; '' when nothing in particular.
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_at ON audit_log(at);
CREATE INDEX audit_log_by_actor ON audit_log(actor, at);
CREATE INDEX audit_log_by_target ON audit_log(target, at);

-- Banned client addresses of the front proxy: a network in canonical CIDR form
-- (host bits cleared, IPv4-mapped IPv6 written as IPv4), so one range has one row.
CREATE TABLE bans (
    network TEXT PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- A disabled tool's record: why, by whom, and when its home is archived and the tool
-- deleted (40 days later, as the original's mark_tool). Enabling deletes the row.
CREATE TABLE tool_disablements (
    tool TEXT PRIMARY KEY NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    reason TEXT NOT NULL DEFAULT '',
    disabled_by TEXT NOT NULL,
    disabled_at INTEGER NOT NULL,
    archive_at INTEGER NOT NULL,
    delete_at INTEGER NOT NULL
);
CREATE INDEX tool_disablements_by_delete_at ON tool_disablements(delete_at);

-- A locked user's certificate and tokens are refused and the dashboard refuses their
-- log-in; NULL when not locked.
ALTER TABLE users ADD COLUMN locked_at INTEGER;
