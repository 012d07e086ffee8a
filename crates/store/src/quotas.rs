//! Per-tool quota overrides: `(tool, key, value)` rows of `tool_quotas`.
//!
//! The store keeps keys and values as opaque text: which keys exist and how their values
//! are written belongs to the jobs engine's `quota` module, which validates them before
//! they are written here. Every write is all or nothing.

use std::collections::BTreeMap;

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Error, Result, Store, to_unix};

impl Store {
    /// The quota overrides of `tool`, key to value; empty when it has none (or does not
    /// exist).
    pub async fn quota_overrides(&self, tool: &str) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM tool_quotas WHERE tool = ?")
            .bind(tool)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)))
            .collect())
    }

    /// Sets overrides of `tool`, replacing earlier values of the same keys, in one
    /// transaction. [`Error::NotFound`] when there is no such tool, and nothing is written.
    pub async fn set_quota_overrides(
        &self,
        tool: &str,
        values: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        ensure_tool(&mut tx, tool).await?;
        for (key, value) in values {
            sqlx::query(
                "INSERT INTO tool_quotas (tool, key, value, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT(tool, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(tool)
            .bind(key)
            .bind(value)
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the overrides of `keys` from `tool`, so they have their defaults again;
    /// returns the keys that had one. [`Error::NotFound`] when there is no such tool.
    pub async fn reset_quota_overrides(&self, tool: &str, keys: &[&str]) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        ensure_tool(&mut tx, tool).await?;
        let mut removed = Vec::new();
        for key in keys {
            let res = sqlx::query("DELETE FROM tool_quotas WHERE tool = ? AND key = ?")
                .bind(tool)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() > 0 {
                removed.push((*key).to_owned());
            }
        }
        tx.commit().await?;
        Ok(removed)
    }
}

async fn ensure_tool(tx: &mut sqlx::SqliteConnection, tool: &str) -> Result<()> {
    let exists = sqlx::query("SELECT 1 FROM tools WHERE name = ?")
        .bind(tool)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(Error::NotFound {
            what: "tool",
            name: tool.to_owned(),
        })
    }
}
