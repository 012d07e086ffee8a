//! Envvars: per-tool secrets (toolforge-reference.md §2.1), stored encrypted.
//!
//! [`Secrets`] is the service: create or replace, get, list, delete, quota, key
//! rotation, and [`Secrets::job_environment`] for the jobs service. It knows no HTTP;
//! the gateway's `envvars` module maps it onto the wire contract.
//!
//! Storage: the `envvars` table of the store (migration `0003_envvars.sql`) holds, per
//! tool and name, the id of the key that sealed the value, a nonce and the ciphertext.
//! Keys live outside the database, in `<keys-dir>/<key-id>.key` ([`keys`]).
//!
//! Architecture Invariant: no value is ever written to the database, a log line, an
//! error message or a `Debug` output in clear; values travel as [`SecretValue`]
//! (redacted `Debug`, zeroed on drop) until the one place that sends or injects them.
//!
//! Architecture Invariant: every stored value can be decrypted with the key whose id
//! is stored beside it; a key is deleted only once no value refers to it.

mod keys;
mod name;
mod value;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Row, SqlitePool};
use tokio::sync::{Mutex, RwLock};

use crate::keys::{KeyRing, Sealed};
pub use crate::name::{EnvvarName, MAX_NAME_LEN, NAME_PATTERN, RESERVED_NAMES};
pub use crate::value::{MAX_VALUE_BYTES, SecretValue};

/// Errors of the envvars service.
///
/// The refusals ([`Error::is_refusal`]) are the user's to fix and their messages are
/// shown to the user; none of them quotes a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name breaks [`NAME_PATTERN`] or [`MAX_NAME_LEN`].
    #[error(
        "Invalid envvar name '{name}', must match {NAME_PATTERN} (upper-case letters, digits and _, at least 4 characters, starting with a letter, not ending with _, at most {MAX_NAME_LEN})"
    )]
    InvalidName { name: String },
    /// The name is one of [`RESERVED_NAMES`].
    #[error("Envvar name {name} is reserved: the platform sets it in every job of the tool")]
    ReservedName { name: String },
    /// The value is longer than [`MAX_VALUE_BYTES`].
    #[error("The value of {name} is {len} bytes long, more than the limit of {limit} bytes")]
    ValueTooLong {
        name: EnvvarName,
        len: usize,
        limit: usize,
    },
    /// The value contains `\0`.
    #[error(
        "The value of {name} contains a NUL character, which an environment variable cannot hold"
    )]
    NulInValue { name: EnvvarName },
    /// The tool has no envvar of that name.
    #[error("Envvar {name} not found")]
    NotFound { name: EnvvarName },
    /// Creating one more envvar would exceed the tool's quota.
    #[error(
        "Envvars quota exceeded: tool {tool} already has {used} envvars and its quota is {quota}; delete one before creating another"
    )]
    QuotaExceeded { tool: String, used: u32, quota: u32 },
    /// A key file or the keys directory cannot be used.
    #[error("the secrets key file {path} cannot be used: {problem}")]
    KeyFile { path: PathBuf, problem: String },
    /// No key is loaded (an internal invariant: [`Secrets::open`] creates one).
    #[error("no secrets key is loaded")]
    NoKey,
    /// The key a value was sealed with is not loaded.
    #[error(
        "the stored value of {name} of tool {tool} was sealed with key {key_id}, whose file {path} is missing"
    )]
    MissingKey {
        tool: String,
        name: EnvvarName,
        key_id: u32,
        path: PathBuf,
    },
    /// A stored value does not authenticate.
    #[error(
        "the stored value of {name} of tool {tool} cannot be decrypted with key {key_id} (tampered with, or sealed for another tool or name)"
    )]
    Undecryptable {
        tool: String,
        name: EnvvarName,
        key_id: u32,
    },
    /// A stored name no longer follows the rule (the database was edited by hand).
    #[error("a stored envvar name of tool {tool} is invalid")]
    CorruptName { tool: String },
    /// Reading or writing a file failed.
    #[error("while accessing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A blocking task was lost.
    #[error("a background task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    /// True for refusals of the request (the caller's to fix, nothing was changed);
    /// false for failures of the platform.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::ReservedName { .. }
                | Error::ValueTooLong { .. }
                | Error::NulInValue { .. }
                | Error::NotFound { .. }
                | Error::QuotaExceeded { .. }
        )
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of the envvars service.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// How many envvars each tool may have (the original's `quota`; default 100), unless
    /// an admin set the tool's `envvars` quota (`toolforged admin quota set TOOL envvars=N`).
    pub quota_per_tool: u32,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            quota_per_tool: 100,
        }
    }
}

/// One envvar of a tool, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envvar {
    /// The name.
    pub name: EnvvarName,
    /// The value (redacted in `Debug`).
    pub value: SecretValue,
}

/// A tool's envvars quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// How many envvars the tool may have.
    pub quota: u32,
    /// How many it has.
    pub used: u32,
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub key_id: u32,
    /// How many values were re-encrypted with it.
    pub reencrypted: u64,
    /// Keys deleted because no value refers to them any more.
    pub retired: Vec<u32>,
    /// Values that could not be re-encrypted (`tool/NAME: reason`); their keys are kept.
    pub unreadable: Vec<String>,
}

/// The envvars service.
///
/// Locking: `ring` is read-locked by every operation that seals or opens a value, for
/// as long as the sealed value is in flight to or from the database; a rotation takes
/// it for writing only to add the new key and, at the end, to delete keys no value
/// refers to. So reads and writes go on during a rotation, a value is always sealed
/// with a key that is on disk, and no key disappears under a reader.
#[derive(Debug)]
pub struct Secrets {
    pool: SqlitePool,
    ring: RwLock<KeyRing>,
    /// One rotation at a time.
    rotation: Mutex<()>,
    config: SecretsConfig,
}

impl Secrets {
    /// Opens the service on `store`, loading the keys in `keys_dir` (created 0700 when
    /// missing) and creating the first key on the first start.
    ///
    /// Fails when a key file or the directory is readable by others, or is malformed.
    pub async fn open(
        store: &store::Store,
        keys_dir: &Path,
        config: SecretsConfig,
    ) -> Result<Self> {
        let pool = store.pool().clone();
        let dir = keys_dir.to_owned();
        let mut ring = tokio::task::spawn_blocking(move || KeyRing::load(&dir)).await??;
        let stored_ids: Vec<u32> = sqlx::query("SELECT DISTINCT key_id FROM envvars")
            .fetch_all(&pool)
            .await?
            .iter()
            .filter_map(|row| u32::try_from(row.get::<i64, _>(0)).ok())
            .collect();
        let missing: Vec<u32> = stored_ids
            .iter()
            .copied()
            .filter(|id| !ring.ids().contains(id))
            .collect();
        if !missing.is_empty() {
            tracing::error!(
                keys_dir = %keys_dir.display(),
                ?missing,
                "envvars sealed with these keys cannot be read: their key files are missing; restore them from a backup"
            );
        }
        if ring.active_id().is_none() {
            // Never reuse an id a stored value refers to, even if its file is lost.
            let id = stored_ids.iter().copied().max().unwrap_or(0) + 1;
            add_key(&mut ring, id).await?;
            tracing::info!(key_id = id, keys_dir = %keys_dir.display(), "created the envvars encryption key");
        }
        Ok(Self {
            pool,
            ring: RwLock::new(ring),
            rotation: Mutex::new(()),
            config,
        })
    }

    /// Creates `name` for `tool` or replaces its value.
    ///
    /// Refused (nothing changes) for a reserved name, a value over [`MAX_VALUE_BYTES`]
    /// or holding `\0`, or a new name beyond the tool's quota.
    pub async fn set(&self, tool: &str, name: &EnvvarName, value: &SecretValue) -> Result<()> {
        name.check_storable()?;
        value.check_storable(name)?;
        let ring = self.ring.read().await;
        let sealed = ring.seal(tool, name, value)?;
        // One statement, so the quota check and the write are atomic: replacing an
        // existing name always passes, a new one only below the quota (the tool's
        // override when an admin set one, as in `quota_limit`, else the default).
        let res = sqlx::query(
            "INSERT INTO envvars (tool, name, key_id, nonce, ciphertext, created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6
             WHERE EXISTS (SELECT 1 FROM envvars WHERE tool = ?1 AND name = ?2)
                OR (SELECT COUNT(*) FROM envvars WHERE tool = ?1) < COALESCE(
                    (SELECT CAST(value AS INTEGER) FROM tool_quotas
                     WHERE tool = ?1 AND key = 'envvars'),
                    ?7)
             ON CONFLICT (tool, name) DO UPDATE SET
                key_id = excluded.key_id, nonce = excluded.nonce,
                ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        )
        .bind(tool)
        .bind(name.as_str())
        .bind(sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(unix_now())
        .bind(self.config.quota_per_tool)
        .execute(&self.pool)
        .await?;
        drop(ring);
        if res.rows_affected() == 0 {
            return Err(Error::QuotaExceeded {
                tool: tool.to_owned(),
                used: self.count(tool).await?,
                quota: self.quota_limit(tool).await?,
            });
        }
        Ok(())
    }

    /// `tool`'s envvar `name`, decrypted; `None` when it has none of that name.
    pub async fn get(&self, tool: &str, name: &EnvvarName) -> Result<Option<Envvar>> {
        let ring = self.ring.read().await;
        let Some(sealed) = self.fetch_sealed(tool, name).await? else {
            return Ok(None);
        };
        let value = ring.open(tool, name, &sealed)?;
        Ok(Some(Envvar {
            name: name.clone(),
            value,
        }))
    }

    /// The names of `tool`'s envvars, sorted, without reading or decrypting any value
    /// (the dashboard's tool page shows names only).
    pub async fn names(&self, tool: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM envvars WHERE tool = ? ORDER BY name")
            .bind(tool)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Every envvar of `tool`, decrypted, by name.
    pub async fn list(&self, tool: &str) -> Result<Vec<Envvar>> {
        let ring = self.ring.read().await;
        let rows = sqlx::query(
            "SELECT name, key_id, nonce, ciphertext FROM envvars WHERE tool = ? ORDER BY name",
        )
        .bind(tool)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let name =
                    EnvvarName::parse(row.get::<&str, _>(0)).map_err(|_| Error::CorruptName {
                        tool: tool.to_owned(),
                    })?;
                let value = ring.open(tool, &name, &sealed_from_row(row, 1))?;
                Ok(Envvar { name, value })
            })
            .collect()
    }

    /// Deletes `tool`'s envvar `name`, returning its last value.
    pub async fn delete(&self, tool: &str, name: &EnvvarName) -> Result<Envvar> {
        // Delete exactly the version that was read: after a concurrent replacement
        // the delete misses, and the loop reads the new value.
        loop {
            let (value, nonce) = {
                let ring = self.ring.read().await;
                let Some(sealed) = self.fetch_sealed(tool, name).await? else {
                    return Err(Error::NotFound { name: name.clone() });
                };
                (ring.open(tool, name, &sealed)?, sealed.nonce)
            };
            let res = sqlx::query("DELETE FROM envvars WHERE tool = ? AND name = ? AND nonce = ?")
                .bind(tool)
                .bind(name.as_str())
                .bind(&nonce)
                .execute(&self.pool)
                .await?;
            if res.rows_affected() == 1 {
                return Ok(Envvar {
                    name: name.clone(),
                    value,
                });
            }
        }
    }

    /// `tool`'s quota and how much of it is used.
    pub async fn quota(&self, tool: &str) -> Result<Quota> {
        Ok(Quota {
            quota: self.quota_limit(tool).await?,
            used: self.count(tool).await?,
        })
    }

    /// How many envvars a tool may have unless an admin set its quota.
    pub fn default_quota(&self) -> u32 {
        self.config.quota_per_tool
    }

    /// `tool`'s envvars quota: its `envvars` override (the store's `tool_quotas`, whose
    /// values the admin command validated as counts), else the default.
    async fn quota_limit(&self, tool: &str) -> Result<u32> {
        let row = sqlx::query("SELECT value FROM tool_quotas WHERE tool = ? AND key = 'envvars'")
            .bind(tool)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .and_then(|row| row.get::<String, _>(0).trim().parse().ok())
            .unwrap_or(self.config.quota_per_tool))
    }

    /// The environment a job of `tool` starts with: every envvar of the tool, decrypted,
    /// as `(name, value)` pairs sorted by name, ready for `Command::envs`.
    ///
    /// For the jobs service, once per job start. The pairs are plain `String`s because
    /// process spawning needs them so: pass them to the spawner and drop them at once;
    /// never log them. The platform's own variables ([`RESERVED_NAMES`]) are not among
    /// them (no tool can store those): the jobs service adds them itself. Fails, rather
    /// than starting the job without a variable, when a value cannot be decrypted.
    pub async fn job_environment(&self, tool: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .list(tool)
            .await?
            .into_iter()
            .map(|envvar| (envvar.name.to_string(), envvar.value.expose().to_owned()))
            .collect())
    }

    /// Creates a new key, re-encrypts every value with it, and deletes the keys no value
    /// refers to any more; reads and writes go on meanwhile.
    ///
    /// A value that cannot be decrypted is left as it is and reported in
    /// [`Rotation::unreadable`]; its key is kept.
    pub async fn rotate_key(&self) -> Result<Rotation> {
        let _one_at_a_time = self.rotation.lock().await;
        let key_id = {
            let mut ring = self.ring.write().await;
            let stored_max: Option<i64> = sqlx::query_scalar("SELECT MAX(key_id) FROM envvars")
                .fetch_one(&self.pool)
                .await?;
            let stored_max = stored_max
                .and_then(|id| u32::try_from(id).ok())
                .unwrap_or(0);
            let id = ring.active_id().unwrap_or(0).max(stored_max) + 1;
            // The write lock is held across the file write on purpose: no value may be
            // sealed while the active key changes.
            add_key(&mut ring, id).await?;
            id
        };
        tracing::info!(
            key_id,
            "rotating the envvars key: re-encrypting every value"
        );

        let mut reencrypted = 0;
        let mut unreadable = Vec::new();
        let mut after: (String, String) = (String::new(), String::new());
        loop {
            let rows = sqlx::query(
                "SELECT tool, name, key_id, nonce, ciphertext FROM envvars
                 WHERE key_id != ? AND (tool, name) > (?, ?) ORDER BY tool, name LIMIT 100",
            )
            .bind(key_id)
            .bind(&after.0)
            .bind(&after.1)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = (last.get(0), last.get(1));
            let ring = self.ring.read().await;
            for row in &rows {
                let tool: &str = row.get(0);
                let raw_name: &str = row.get(1);
                let old = sealed_from_row(row, 2);
                let resealed = EnvvarName::parse(raw_name)
                    .map_err(|_| Error::CorruptName {
                        tool: tool.to_owned(),
                    })
                    .and_then(|name| {
                        let value = ring.open(tool, &name, &old)?;
                        ring.seal(tool, &name, &value)
                    });
                let new = match resealed {
                    Ok(new) => new,
                    Err(err) => {
                        unreadable.push(format!("{tool}/{raw_name}: {err}"));
                        continue;
                    }
                };
                // Only the version that was read: a concurrent write already used the
                // new key, a concurrent delete left nothing to do.
                let res = sqlx::query(
                    "UPDATE envvars SET key_id = ?, nonce = ?, ciphertext = ?
                     WHERE tool = ? AND name = ? AND nonce = ?",
                )
                .bind(new.key_id)
                .bind(&new.nonce)
                .bind(&new.ciphertext)
                .bind(tool)
                .bind(raw_name)
                .bind(&old.nonce)
                .execute(&self.pool)
                .await?;
                reencrypted += res.rows_affected();
            }
        }

        let mut retired = Vec::new();
        {
            let mut ring = self.ring.write().await;
            let referenced: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT key_id FROM envvars")
                .fetch_all(&self.pool)
                .await?;
            for id in ring.ids() {
                if id != key_id && !referenced.contains(&i64::from(id)) {
                    let path = keys::key_path(ring.dir(), id);
                    tokio::task::spawn_blocking(move || keys::remove_key_file(&path)).await??;
                    ring.remove(id);
                    retired.push(id);
                }
            }
        }
        tracing::info!(
            key_id,
            reencrypted,
            ?retired,
            unreadable = unreadable.len(),
            "rotated the envvars key"
        );
        Ok(Rotation {
            key_id,
            reencrypted,
            retired,
            unreadable,
        })
    }

    async fn count(&self, tool: &str) -> Result<u32> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM envvars WHERE tool = ?")
            .bind(tool)
            .fetch_one(&self.pool)
            .await?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn fetch_sealed(&self, tool: &str, name: &EnvvarName) -> Result<Option<Sealed>> {
        let row = sqlx::query(
            "SELECT key_id, nonce, ciphertext FROM envvars WHERE tool = ? AND name = ?",
        )
        .bind(tool)
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| sealed_from_row(&row, 0)))
    }
}

/// Writes key `id` to disk durably, then makes it the active key of `ring`.
async fn add_key(ring: &mut KeyRing, id: u32) -> Result<()> {
    let key = keys::generate_key();
    let dir = ring.dir().to_owned();
    let on_disk = key.clone();
    tokio::task::spawn_blocking(move || keys::write_key_file(&dir, id, &on_disk)).await??;
    ring.insert(id, key);
    Ok(())
}

fn sealed_from_row(row: &sqlx::sqlite::SqliteRow, first: usize) -> Sealed {
    Sealed {
        key_id: u32::try_from(row.get::<i64, _>(first)).unwrap_or(u32::MAX),
        nonce: row.get(first + 1),
        ciphertext: row.get(first + 2),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests;
