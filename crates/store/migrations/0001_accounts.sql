-- Users and tools share one namespace of names: a name is never both.
CREATE TABLE names (
    name TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'tool'))
);

CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL REFERENCES names(name),
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE tools (
    name TEXT PRIMARY KEY NOT NULL REFERENCES names(name),
    uid INTEGER NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at INTEGER NOT NULL
);

-- A member is a user or another tool (tool-as-maintainer, one level).
CREATE TABLE maintainers (
    tool TEXT NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    member TEXT NOT NULL REFERENCES names(name) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (tool, member)
);
CREATE INDEX maintainers_by_member ON maintainers(member);

-- Monotonic counters; `next_uid` makes sure a uid is never handed out twice,
-- even after the tool that had it is deleted.
CREATE TABLE counters (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('next_uid', 50000);

-- Every certificate the CA issued to a tool or user.
-- `revoked`: regenerated away, refused at once.
-- `superseded`: renewed; still accepted until it expires so running bots never break.
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'tool')),
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
    issued_at INTEGER NOT NULL
);
CREATE INDEX certificates_by_subject ON certificates(subject);

CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
