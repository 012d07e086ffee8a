//! The platform's state: SQLite through `sqlx`, with migrations.
//!
//! Every service keeps its tables here, each module owning its own.
//! Times are stored as Unix seconds (UTC).
//!
//! Architecture Invariant: a write is committed before the caller acknowledges it,
//! so a crash after an acknowledgement never loses the acknowledged state.

mod accounts;
mod admin;
mod certificates;
mod dashboard;
mod jobs;
mod mail;
mod quotas;
mod tokens;
mod toolinfo;

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub use crate::accounts::{NewTool, NewUser, PrincipalKind, Tool, ToolStatus, User};
pub use crate::admin::{
    AuditEntry, AuditFilter, Ban, InvalidNetwork, NewAudit, ToolDisablement, parse_network,
    record_audit_in,
};
pub use crate::certificates::{CertRecord, CertStatus, NewCert};
pub use crate::dashboard::{
    AccessComment, AccessFilter, AccessRequest, AccessStatus, SessionRecord, SshKeyRecord,
    UserStanding,
};
pub use crate::jobs::{JobRecord, RunEnd, RunRecord};
pub use crate::mail::{MailEvent, OutboxMail};
pub use crate::tokens::TokenRecord;
pub use crate::toolinfo::{
    License, ToolInfo, ToolInfoUpdate, ToolListPage, ToolSummary, ToolWithInfo,
};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is already used by a user or a tool.
    #[error("the name '{name}' is already taken by a {kind}")]
    NameTaken { name: String, kind: PrincipalKind },
    /// No user, tool or record of that name.
    #[error("no {what} named '{name}'")]
    NotFound { what: &'static str, name: String },
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The IP network type of [`Ban`], re-exported so callers need not name the crate.
pub use ipnet::IpNet;

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating when missing) the SQLite database at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed transaction survives a power cut, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Starts a transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
    ///
    /// A deferred transaction that reads and then writes cannot wait for the write lock
    /// (SQLite answers "database is locked" at once, whatever the busy timeout), so every
    /// transaction that writes starts here and waits its turn instead.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The underlying pool, for services that keep their own tables here.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Reads a value of the small key/value table used for bootstrap facts.
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Writes a value of the key/value table.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_unix(at: time::OffsetDateTime) -> i64 {
    at.unix_timestamp()
}

fn from_unix(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
