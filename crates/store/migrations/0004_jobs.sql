-- Job definitions: the JSON of a validated `jobs::spec::JobSpec`, one row per tool and name.
CREATE TABLE jobs (
    tool TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tool, name)
);

-- Every run of every replica: started, and how it ended. Written before the run is
-- reported, so a crash loses no history; a run with no end after a restart of the
-- daemon is settled by recovery.
CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT NOT NULL,
    job TEXT NOT NULL,
    replica INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    outcome TEXT,
    exit_code INTEGER,
    signal INTEGER,
    message TEXT
);
CREATE INDEX job_runs_by_job ON job_runs(tool, job, id);
