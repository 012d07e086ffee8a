//! Job definitions and their run history.
//!
//! The store keeps a definition as opaque JSON (the jobs crate owns its shape), so this
//! crate stays independent of the jobs domain.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Result, Store, from_unix, to_unix};

/// A stored job definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub tool: String,
    pub name: String,
    /// The definition, as JSON.
    pub spec: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One run of one replica of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub tool: String,
    pub job: String,
    pub replica: u32,
    /// 0 for the first try, then the retry number.
    pub attempt: u32,
    /// What started it: `create`, `schedule`, `retry`, `restart`, `supervisor`, `recovery`.
    pub trigger: String,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    /// `succeeded`, `failed`, `oom`, `killed`, `timeout`, `interrupted`, `skipped`,
    /// `start-failed`, `stopped`.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub message: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd<'a> {
    pub outcome: &'a str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub message: Option<&'a str>,
    pub at: OffsetDateTime,
}

impl Store {
    /// Inserts or replaces a job definition; returns whether it existed before.
    pub async fn put_job(
        &self,
        tool: &str,
        name: &str,
        spec: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let existed = sqlx::query("SELECT 1 FROM jobs WHERE tool = ? AND name = ?")
            .bind(tool)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        sqlx::query(
            "INSERT INTO jobs (tool, name, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(tool, name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
        )
        .bind(tool)
        .bind(name)
        .bind(spec)
        .bind(to_unix(now))
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// One job definition.
    pub async fn get_job(&self, tool: &str, name: &str) -> Result<Option<JobRecord>> {
        let row = sqlx::query(
            "SELECT tool, name, spec, created_at, updated_at FROM jobs WHERE tool = ? AND name = ?",
        )
        .bind(tool)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(job_from_row))
    }

    /// A tool's job definitions, by name.
    pub async fn list_jobs(&self, tool: &str) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query("SELECT tool, name, spec, created_at, updated_at FROM jobs WHERE tool = ? ORDER BY name")
            .bind(tool)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(job_from_row).collect())
    }

    /// Every job definition of every tool.
    pub async fn all_jobs(&self) -> Result<Vec<JobRecord>> {
        let rows = sqlx::query(
            "SELECT tool, name, spec, created_at, updated_at FROM jobs ORDER BY tool, name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(job_from_row).collect())
    }

    /// Deletes a job definition; returns whether it existed. Its run history stays.
    pub async fn delete_job(&self, tool: &str, name: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM jobs WHERE tool = ? AND name = ?")
            .bind(tool)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Records the start of a run; returns its id.
    pub async fn start_run(
        &self,
        tool: &str,
        job: &str,
        replica: u32,
        attempt: u32,
        trigger: &str,
        at: OffsetDateTime,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO job_runs (tool, job, replica, attempt, trigger, started_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(tool)
        .bind(job)
        .bind(replica)
        .bind(attempt)
        .bind(trigger)
        .bind(to_unix(at))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Records how a run ended (once: a run that already ended keeps its first end).
    pub async fn end_run(&self, id: i64, end: &RunEnd<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE job_runs SET ended_at = ?, outcome = ?, exit_code = ?, signal = ?, message = ? WHERE id = ? AND ended_at IS NULL",
        )
        .bind(to_unix(end.at))
        .bind(end.outcome)
        .bind(end.exit_code)
        .bind(end.signal)
        .bind(end.message)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest runs of a job, newest first.
    pub async fn recent_runs(&self, tool: &str, job: &str, limit: u32) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT id, tool, job, replica, attempt, trigger, started_at, ended_at, outcome, exit_code, signal, message
             FROM job_runs WHERE tool = ? AND job = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(tool)
        .bind(job)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_from_row).collect())
    }

    /// Runs that started but never ended (the daemon stopped while they ran).
    pub async fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT id, tool, job, replica, attempt, trigger, started_at, ended_at, outcome, exit_code, signal, message
             FROM job_runs WHERE ended_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(run_from_row).collect())
    }
}

fn job_from_row(row: &SqliteRow) -> JobRecord {
    JobRecord {
        tool: row.get(0),
        name: row.get(1),
        spec: row.get(2),
        created_at: from_unix(row.get(3)),
        updated_at: from_unix(row.get(4)),
    }
}

fn run_from_row(row: &SqliteRow) -> RunRecord {
    RunRecord {
        id: row.get(0),
        tool: row.get(1),
        job: row.get(2),
        replica: u32::try_from(row.get::<i64, _>(3)).unwrap_or(0),
        attempt: u32::try_from(row.get::<i64, _>(4)).unwrap_or(0),
        trigger: row.get(5),
        started_at: from_unix(row.get(6)),
        ended_at: row.get::<Option<i64>, _>(7).map(from_unix),
        outcome: row.get(8),
        exit_code: row.get(9),
        signal: row.get(10),
        message: row.get(11),
    }
}
