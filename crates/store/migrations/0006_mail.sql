-- Job e-mails (crates/mail): an outbox, so a mail survives a restart and an SMTP outage.
--
-- `mail_events`: what happened to a job that its `emails` setting asks to be told about,
-- written when the engine sees it. `mail_id` is NULL until the composer puts the event
-- into a mail; events of a tool with no one to mail are deleted instead.
-- No foreign key to `tools`: an event outlives the tool only until the next compose.
CREATE TABLE mail_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    job TEXT NOT NULL,
    -- `one-off`, `scheduled` or `continuous`.
    job_type TEXT NOT NULL,
    -- The job's `emails` setting when the event happened.
    emails TEXT NOT NULL,
    replica INTEGER NOT NULL,
    -- `started` or `ended`.
    event TEXT NOT NULL CHECK (event IN ('started', 'ended')),
    -- For `ended`: the run's outcome (`succeeded`, `failed`, `oom`, ...) and exit.
    outcome TEXT,
    exit_code INTEGER,
    signal INTEGER,
    message TEXT,
    at INTEGER NOT NULL,
    mail_id INTEGER REFERENCES mail_outbox(id)
);
CREATE INDEX mail_events_pending ON mail_events(mail_id, id);

-- Composed mails. `status` is `pending` until the SMTP server accepted the mail (`sent`)
-- or it cannot ever be sent (`failed`, e.g. no valid recipient); a pending mail is
-- tried again at `next_attempt_at` after a failure, with back-off.
CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    -- One address per line.
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at INTEGER,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
