//! Admin procedures' tables: the audit log, banned networks, disabled tools' schedules
//! and user flags (admin, locked).
//!
//! Architecture Invariant: every change made here writes its audit record in the same
//! transaction, so a committed change always has its who/what/when and an audit record
//! never describes a change that did not happen. Changes made elsewhere (tool creation,
//! tokens, quotas) are recorded with [`Store::record_audit`] right after they commit.
//! Audit details never hold a secret or a password: callers pass reasons and names only.

use std::net::IpAddr;

use ipnet::IpNet;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Error, Result, Store, from_unix, to_unix};

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing with time of writing.
    pub id: i64,
    /// When the action was taken.
    pub at: OffsetDateTime,
    /// Who: `unix:<user>` through the admin socket, the user name through the
    /// dashboard, `toolforged` for the daemon's own scheduled actions.
    pub actor: String,
    /// What: the command, e.g. `ban-ip`, `tool disable`, `user lock`.
    pub action: String,
    /// On what: a tool, a user, a network, a token id; empty when nothing in particular.
    pub target: String,
    /// More about it (a reason, the keys changed); never a secret.
    pub detail: String,
}

/// An audit record to write.
#[derive(Debug, Clone, Copy)]
pub struct NewAudit<'a> {
    /// Who (see [`AuditEntry::actor`]).
    pub actor: &'a str,
    /// What (see [`AuditEntry::action`]).
    pub action: &'a str,
    /// On what (see [`AuditEntry::target`]).
    pub target: &'a str,
    /// More about it; never a secret.
    pub detail: &'a str,
    /// When.
    pub at: OffsetDateTime,
}

/// Which audit records [`Store::list_audit`] returns; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// At or after this time.
    pub since: Option<OffsetDateTime>,
    /// By exactly this actor.
    pub actor: Option<String>,
    /// On exactly this target.
    pub target: Option<String>,
    /// At most this many, newest first (default 1000).
    pub limit: Option<u32>,
}

/// A banned network of the front proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Canonical: host bits cleared, IPv4-mapped IPv6 as IPv4; a single address is a
    /// /32 (or /128).
    pub network: IpNet,
    /// Why, as the admin wrote it.
    pub reason: String,
    /// The actor who banned it.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
}

impl Ban {
    /// Whether `addr` falls in the banned network (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address).
    pub fn covers(&self, addr: IpAddr) -> bool {
        self.network.contains(&canonical_addr(addr))
    }
}

/// A disabled tool's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDisablement {
    /// The tool.
    pub tool: String,
    /// Why, as the admin wrote it (may be empty).
    pub reason: String,
    /// The actor who disabled it.
    pub disabled_by: String,
    /// When.
    pub disabled_at: OffsetDateTime,
    /// When its home is to be archived.
    pub archive_at: OffsetDateTime,
    /// When the tool is to be deleted.
    pub delete_at: OffsetDateTime,
}

/// Why a text is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an IP address or CIDR network: write an IPv4 or IPv6 address (203.0.113.7, 2001:db8::1) or a network with its prefix length (203.0.113.0/24, 2001:db8::/32)"
)]
pub struct InvalidNetwork(pub String);

/// Parses an address or CIDR network into its canonical form: host bits cleared,
/// IPv4-mapped IPv6 as IPv4, a single address as /32 or /128.
pub fn parse_network(text: &str) -> Result<IpNet, InvalidNetwork> {
    let invalid = || InvalidNetwork(text.to_owned());
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let (addr, prefix) = match trimmed.split_once('/') {
        Some((addr, prefix)) => {
            // Only plain decimal digits: no sign, no leading '+'.
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
            (addr, Some(prefix))
        }
        None => (trimmed, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
    let (addr, prefix) = match (addr, prefix) {
        // ::ffff:a.b.c.d/n with n >= 96 is the IPv4 network a.b.c.d/(n-96).
        (IpAddr::V6(v6), prefix) if v6.to_ipv4_mapped().is_some() => {
            let v4 = v6.to_ipv4_mapped().map(IpAddr::V4).ok_or_else(invalid)?;
            match prefix {
                None => (v4, 32),
                Some(p) if (96..=128).contains(&p) => (v4, p - 96),
                Some(p) => (IpAddr::V6(v6), p),
            }
        }
        (IpAddr::V4(_), None) => (addr, 32),
        (IpAddr::V6(_), None) => (addr, 128),
        (_, Some(p)) => (addr, p),
    };
    let net = IpNet::new(addr, prefix).map_err(|_| invalid())?;
    Ok(net.trunc())
}

fn canonical_addr(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

impl Store {
    /// Writes one audit record on its own (for changes committed elsewhere); returns
    /// its id.
    pub async fn record_audit(&self, entry: &NewAudit<'_>) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        record_audit_in(&mut conn, entry).await
    }

    /// Audit records matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = i64::from(filter.limit.unwrap_or(1000).max(1));
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail FROM audit_log
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR target = ?3)
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(filter.since.map(to_unix))
        .bind(filter.actor.as_deref())
        .bind(filter.target.as_deref())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(audit_from_row).collect())
    }

    /// Bans `network` (already canonical, see [`parse_network`]) and records it.
    /// [`Error::Conflict`] naming the existing ban when the same network or a wider one
    /// containing it is already banned; nothing is written then.
    pub async fn add_ban(
        &self,
        network: IpNet,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Ban> {
        let network = network.trunc();
        let mut tx = self.begin_write().await?;
        let existing: Vec<String> = sqlx::query("SELECT network FROM bans")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for text in existing {
            let Ok(banned) = text.parse::<IpNet>() else {
                continue;
            };
            if banned == network {
                return Err(Error::Conflict(format!("{network} is already banned")));
            }
            if banned.contains(&network) {
                return Err(Error::Conflict(format!(
                    "{network} is already banned: it is inside the banned network {banned}"
                )));
            }
        }
        let text = network.to_string();
        sqlx::query(
            "INSERT INTO bans (network, reason, created_by, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&text)
        .bind(reason)
        .bind(actor)
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: "ban-ip",
                target: &text,
                detail: reason,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Ban {
            network,
            reason: reason.to_owned(),
            created_by: actor.to_owned(),
            created_at: from_unix(to_unix(now)),
        })
    }

    /// Lifts the ban of exactly `network` and records it; returns the lifted ban.
    /// [`Error::NotFound`] when that network is not banned (a wider or narrower ban is
    /// not lifted by accident).
    pub async fn remove_ban(
        &self,
        network: IpNet,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Ban> {
        let network = network.trunc();
        let text = network.to_string();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT network, reason, created_by, created_at FROM bans WHERE network = ?",
        )
        .bind(&text)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ban) = row.as_ref().and_then(ban_from_row) else {
            return Err(Error::NotFound {
                what: "ban of the network",
                name: text,
            });
        };
        sqlx::query("DELETE FROM bans WHERE network = ?")
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: "unban-ip",
                target: &text,
                detail: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ban)
    }

    /// Every banned network, oldest ban first.
    pub async fn list_bans(&self) -> Result<Vec<Ban>> {
        let rows = sqlx::query(
            "SELECT network, reason, created_by, created_at FROM bans ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(ban_from_row).collect())
    }

    /// Disables a tool: status `disabled`, with archive and deletion scheduled
    /// `delete_after` from `now`, and the audit record, in one transaction.
    /// [`Error::NotFound`] for no such tool, [`Error::Conflict`] when already disabled.
    pub async fn disable_tool(
        &self,
        tool: &str,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
        delete_after: time::Duration,
    ) -> Result<ToolDisablement> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query("SELECT status FROM tools WHERE name = ?")
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get(0));
        match status.as_deref() {
            None => {
                return Err(Error::NotFound {
                    what: "tool",
                    name: tool.to_owned(),
                });
            }
            Some("disabled") => {
                return Err(Error::Conflict(format!(
                    "tool '{tool}' is already disabled; `tool enable {tool}` enables it"
                )));
            }
            Some(_) => {}
        }
        let disablement = ToolDisablement {
            tool: tool.to_owned(),
            reason: reason.to_owned(),
            disabled_by: actor.to_owned(),
            disabled_at: from_unix(to_unix(now)),
            archive_at: from_unix(to_unix(now + delete_after)),
            delete_at: from_unix(to_unix(now + delete_after)),
        };
        sqlx::query("UPDATE tools SET status = 'disabled' WHERE name = ?")
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tool_disablements (tool, reason, disabled_by, disabled_at, archive_at, delete_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(tool) DO UPDATE SET reason = excluded.reason, disabled_by = excluded.disabled_by,
               disabled_at = excluded.disabled_at, archive_at = excluded.archive_at, delete_at = excluded.delete_at",
        )
        .bind(tool)
        .bind(reason)
        .bind(actor)
        .bind(to_unix(disablement.disabled_at))
        .bind(to_unix(disablement.archive_at))
        .bind(to_unix(disablement.delete_at))
        .execute(&mut *tx)
        .await?;
        let detail = if reason.is_empty() {
            format!("deletion scheduled at {}", rfc3339(disablement.delete_at))
        } else {
            format!(
                "{reason} (deletion scheduled at {})",
                rfc3339(disablement.delete_at)
            )
        };
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: "tool disable",
                target: tool,
                detail: &detail,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(disablement)
    }

    /// Enables a disabled tool: status `active`, the schedule cleared, and the audit
    /// record, in one transaction. [`Error::NotFound`] for no such tool,
    /// [`Error::Conflict`] when it is not disabled.
    pub async fn enable_tool(&self, tool: &str, actor: &str, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query("SELECT status FROM tools WHERE name = ?")
            .bind(tool)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get(0));
        match status.as_deref() {
            None => {
                return Err(Error::NotFound {
                    what: "tool",
                    name: tool.to_owned(),
                });
            }
            Some("disabled") => {}
            Some(_) => {
                return Err(Error::Conflict(format!("tool '{tool}' is not disabled")));
            }
        }
        sqlx::query("UPDATE tools SET status = 'active' WHERE name = ?")
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tool_disablements WHERE tool = ?")
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: "tool enable",
                target: tool,
                detail: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The disablement record of a tool, if it is disabled.
    pub async fn tool_disablement(&self, tool: &str) -> Result<Option<ToolDisablement>> {
        let row = sqlx::query(
            "SELECT tool, reason, disabled_by, disabled_at, archive_at, delete_at FROM tool_disablements WHERE tool = ?",
        )
        .bind(tool)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(disablement_from_row))
    }

    /// Disabled tools whose deletion date is at or before `now`, earliest first.
    pub async fn tools_due_for_deletion(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<ToolDisablement>> {
        let rows = sqlx::query(
            "SELECT d.tool, d.reason, d.disabled_by, d.disabled_at, d.archive_at, d.delete_at
             FROM tool_disablements d JOIN tools t ON t.name = d.tool
             WHERE t.status = 'disabled' AND d.delete_at <= ? ORDER BY d.delete_at, d.tool",
        )
        .bind(to_unix(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(disablement_from_row).collect())
    }

    /// Grants (`true`) or revokes platform admin rights, with the audit record.
    /// [`Error::NotFound`] for no such user; [`Error::Conflict`] when nothing would
    /// change, or when it would leave the platform without an unlocked admin.
    pub async fn set_user_admin(
        &self,
        user: &str,
        admin: bool,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (is_admin, locked) = user_flags(&mut tx, user).await?;
        if is_admin == admin {
            return Err(Error::Conflict(if admin {
                format!("user '{user}' is already an admin")
            } else {
                format!("user '{user}' is not an admin")
            }));
        }
        if !admin && !locked {
            ensure_another_admin(&mut tx, user, "revoking its admin rights").await?;
        }
        sqlx::query("UPDATE users SET is_admin = ? WHERE name = ?")
            .bind(admin)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: if admin {
                    "user grant-admin"
                } else {
                    "user revoke-admin"
                },
                target: user,
                detail: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Locks (`true`) or unlocks a user, with the audit record. A locked user's
    /// certificate and tokens are refused, and the dashboard refuses their log-in.
    /// [`Error::NotFound`] for no such user; [`Error::Conflict`] when nothing would
    /// change, or when locking would leave the platform without an unlocked admin.
    pub async fn set_user_locked(
        &self,
        user: &str,
        locked: bool,
        reason: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (is_admin, is_locked) = user_flags(&mut tx, user).await?;
        if is_locked == locked {
            return Err(Error::Conflict(if locked {
                format!("user '{user}' is already locked")
            } else {
                format!("user '{user}' is not locked")
            }));
        }
        if locked && is_admin {
            ensure_another_admin(&mut tx, user, "locking it").await?;
        }
        sqlx::query("UPDATE users SET locked_at = ? WHERE name = ?")
            .bind(locked.then(|| to_unix(now)))
            .bind(user)
            .execute(&mut *tx)
            .await?;
        record_audit_in(
            &mut tx,
            &NewAudit {
                actor,
                action: if locked { "user lock" } else { "user unlock" },
                target: user,
                detail: reason,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Writes one audit record inside a caller's transaction (or on a connection).
pub async fn record_audit_in(
    conn: &mut sqlx::SqliteConnection,
    entry: &NewAudit<'_>,
) -> Result<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(to_unix(entry.at))
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.detail)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    Ok(id)
}

async fn user_flags(tx: &mut sqlx::SqliteConnection, user: &str) -> Result<(bool, bool)> {
    let row = sqlx::query("SELECT is_admin, locked_at IS NOT NULL FROM users WHERE name = ?")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "user",
            name: user.to_owned(),
        })?;
    Ok((row.get(0), row.get(1)))
}

async fn ensure_another_admin(
    tx: &mut sqlx::SqliteConnection,
    user: &str,
    doing: &str,
) -> Result<()> {
    let others: i64 = sqlx::query(
        "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND locked_at IS NULL AND name != ?",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?
    .get(0);
    if others == 0 {
        return Err(Error::Conflict(format!(
            "'{user}' is the only unlocked admin; {doing} would leave the platform without one"
        )));
    }
    Ok(())
}

fn audit_from_row(row: &SqliteRow) -> AuditEntry {
    AuditEntry {
        id: row.get(0),
        at: from_unix(row.get(1)),
        actor: row.get(2),
        action: row.get(3),
        target: row.get(4),
        detail: row.get(5),
    }
}

fn ban_from_row(row: &SqliteRow) -> Option<Ban> {
    Some(Ban {
        network: row.get::<&str, _>(0).parse().ok()?,
        reason: row.get(1),
        created_by: row.get(2),
        created_at: from_unix(row.get(3)),
    })
}

fn disablement_from_row(row: &SqliteRow) -> ToolDisablement {
    ToolDisablement {
        tool: row.get(0),
        reason: row.get(1),
        disabled_by: row.get(2),
        disabled_at: from_unix(row.get(3)),
        archive_at: from_unix(row.get(4)),
        delete_at: from_unix(row.get(5)),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests;
