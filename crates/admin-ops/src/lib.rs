//! The admin procedures, callable in-process: the admin socket (`toolforged admin …`)
//! and the dashboard's admin pages both call these, so both behave the same and leave
//! the same audit records.
//!
//! # API
//!
//! Build one [`AdminOps`] at start (`serve.rs` does; the dashboard receives a clone of the
//! `Arc`). Every mutating method takes the `actor` first: `unix:<user>` for the admin
//! socket (from the peer's credentials), the admin's user name for the dashboard.
//!
//! | method | what it does | refused (`Error::is_refusal`) when |
//! |---|---|---|
//! | [`AdminOps::ban_ip`] | bans an address or CIDR network at the front proxy; wakes [`AdminOps::bans_changed`] | the text is no address/network, the reason is empty, already banned (also inside a wider ban) |
//! | [`AdminOps::unban_ip`] | lifts exactly that ban; wakes `bans_changed` | not banned |
//! | [`AdminOps::list_bans`] | every ban, oldest first | — |
//! | [`AdminOps::disable_tool`] | status `disabled`, every workload stopped now, credentials refused by the gateway, archive and deletion scheduled [`DELETE_AFTER`] later | no such tool, already disabled |
//! | [`AdminOps::enable_tool`] | status `active`, schedule cleared, continuous jobs started, schedules fire again | no such tool, not disabled |
//! | [`AdminOps::delete_tool`] | deletes now: jobs stopped and forgotten, captured output removed, home archived to `<data-dir>/archive/` | no such tool |
//! | [`AdminOps::delete_due_tools`] | deletes the disabled tools whose date has passed (the daemon's [`deletion_worker`] calls it) | — |
//! | [`AdminOps::set_user_admin`] | grants or revokes platform admin rights | no such user, no change, the last unlocked admin |
//! | [`AdminOps::lock_user`] / [`AdminOps::unlock_user`] | a locked user's certificate and tokens are refused (401); the dashboard refuses their log-in | no such user, no change, the last unlocked admin |
//! | [`AdminOps::record`] | writes an audit record for an admin action made through another API (tool create, quota set, …) | — |
//! | [`AdminOps::audit`] | the audit log, newest first, filtered by time, actor and target | — |
//!
//! Architecture Invariant: every admin action leaves an audit record with who, what, on
//! what and when. Bans, disable/enable and user flags write it in the store's
//! transaction of the change itself; actions made through other APIs are recorded right
//! after they succeed. Details hold reasons and names, never a secret or a password.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use accounts::{Accounts, Clock};
use store::{AuditEntry, AuditFilter, Ban, NewAudit, ToolDisablement};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long after it was disabled a tool's home is archived and the tool deleted
/// (the original's mark_tool: 40 days).
pub const DELETE_AFTER: time::Duration = time::Duration::days(40);

/// The actor of the daemon's own scheduled actions.
pub const DAEMON_ACTOR: &str = "toolforged";

/// Errors of the admin procedures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; the message names the rule.
    #[error("{0}")]
    Invalid(String),
    /// The accounts or the store refused or failed.
    #[error(transparent)]
    Accounts(#[from] accounts::Error),
    /// The jobs engine failed.
    #[error("the jobs of tool '{tool}' could not be {doing}")]
    Jobs {
        tool: String,
        doing: &'static str,
        #[source]
        source: jobs_engine::Error,
    },
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        Error::Accounts(err.into())
    }
}

impl Error {
    /// Whether the request was refused (bad input, not found, conflict: exit 1, HTTP
    /// 4xx) rather than failing inside the platform.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::Invalid(_) => true,
            Error::Accounts(err) => err.is_refusal(),
            Error::Jobs { .. } => false,
        }
    }

    /// Whether the refusal is "no such tool/user/ban" (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Accounts(accounts::Error::Store(store::Error::NotFound { .. }))
        )
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The admin procedures over the platform's accounts and jobs engine.
pub struct AdminOps {
    accounts: Arc<Accounts>,
    engine: jobs_engine::JobsEngine,
    bans_changed: Arc<Notify>,
}

impl std::fmt::Debug for AdminOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOps").finish_non_exhaustive()
    }
}

impl AdminOps {
    /// The procedures over `accounts` and `engine`; `bans_changed` is notified
    /// (`notify_one`: a permit is kept when nobody waits) after every ban change, for its
    /// one consumer, the front proxy, which reloads its list then.
    pub fn new(
        accounts: Arc<Accounts>,
        engine: jobs_engine::JobsEngine,
        bans_changed: Arc<Notify>,
    ) -> Self {
        Self {
            accounts,
            engine,
            bans_changed,
        }
    }

    /// Notified after every ban change.
    pub fn bans_changed(&self) -> &Arc<Notify> {
        &self.bans_changed
    }

    /// The accounts behind the procedures.
    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    fn store(&self) -> &store::Store {
        self.accounts.store()
    }

    /// Bans an address or CIDR network (`203.0.113.7`, `2001:db8::/32`) with a reason.
    pub async fn ban_ip(&self, actor: &str, network: &str, reason: &str) -> Result<Ban> {
        let network =
            store::parse_network(network).map_err(|err| Error::Invalid(err.to_string()))?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid(
                "a ban needs a reason (--reason TEXT): say why, for whoever lifts it later"
                    .to_owned(),
            ));
        }
        let ban = self
            .store()
            .add_ban(network, reason, actor, self.accounts.now())
            .await?;
        self.bans_changed.notify_one();
        Ok(ban)
    }

    /// Lifts the ban of exactly this address or network.
    pub async fn unban_ip(&self, actor: &str, network: &str) -> Result<Ban> {
        let network =
            store::parse_network(network).map_err(|err| Error::Invalid(err.to_string()))?;
        let ban = self
            .store()
            .remove_ban(network, actor, self.accounts.now())
            .await
            .map_err(|err| match err {
                store::Error::NotFound { name, .. } => Error::Invalid(format!(
                    "{name} is not banned (`toolforged admin bans` lists the bans)"
                )),
                other => other.into(),
            })?;
        self.bans_changed.notify_one();
        Ok(ban)
    }

    /// Every ban, oldest first.
    pub async fn list_bans(&self) -> Result<Vec<Ban>> {
        Ok(self.store().list_bans().await?)
    }

    /// Disables a tool: its jobs and webservice stop at once, its credentials are
    /// refused, and archive and deletion are scheduled [`DELETE_AFTER`] later.
    pub async fn disable_tool(
        &self,
        actor: &str,
        tool: &str,
        reason: &str,
    ) -> Result<ToolDisablement> {
        // The status is written first: from then on the engine starts nothing for the
        // tool and the gateway refuses its credentials, whatever happens next.
        let disabled = self
            .store()
            .disable_tool(
                tool,
                reason.trim(),
                actor,
                self.accounts.now(),
                DELETE_AFTER,
            )
            .await?;
        self.engine
            .suspend_tool(tool)
            .await
            .map_err(|source| Error::Jobs {
                tool: tool.to_owned(),
                doing: "stopped",
                source,
            })?;
        Ok(disabled)
    }

    /// Enables a disabled tool again: its continuous jobs start and its scheduled jobs
    /// fire again; the deletion schedule is cleared.
    pub async fn enable_tool(&self, actor: &str, tool: &str) -> Result<()> {
        self.store()
            .enable_tool(tool, actor, self.accounts.now())
            .await?;
        self.engine
            .resume_tool(tool)
            .await
            .map_err(|source| Error::Jobs {
                tool: tool.to_owned(),
                doing: "started",
                source,
            })?;
        Ok(())
    }

    /// Deletes a tool now; returns where its home was archived.
    pub async fn delete_tool(&self, actor: &str, tool: &str) -> Result<PathBuf> {
        self.delete_tool_with(actor, tool, "").await
    }

    async fn delete_tool_with(&self, actor: &str, tool: &str, why: &str) -> Result<PathBuf> {
        if self.store().get_tool(tool).await?.is_some() {
            // A deleted tool's jobs stop first, and nothing of them is left for a later
            // tool of the same name: definitions, run history and captured output go too.
            self.engine
                .flush(tool)
                .await
                .map_err(|source| Error::Jobs {
                    tool: tool.to_owned(),
                    doing: "stopped",
                    source,
                })?;
            self.engine.logs().remove_tool(tool);
        }
        let archive = self.accounts.delete_tool(tool).await?;
        let detail = format!("{why}home archived to {}", archive.display());
        self.record(actor, "tool delete", tool, &detail).await?;
        Ok(archive)
    }

    /// Deletes every disabled tool whose deletion date is at or before `now` (archiving
    /// its home), as [`DAEMON_ACTOR`]. Returns each tool with where its home went, or
    /// why it could not be deleted (it is tried again next time).
    pub async fn delete_due_tools(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<Vec<(String, Result<PathBuf>)>> {
        let mut done = Vec::new();
        for due in self.store().tools_due_for_deletion(now).await? {
            // An admin may have enabled it since the list was read.
            let still_due = self
                .store()
                .tool_disablement(&due.tool)
                .await?
                .is_some_and(|current| current.delete_at <= now);
            if !still_due {
                continue;
            }
            let why = format!(
                "scheduled when {} disabled it at {}; ",
                due.disabled_by,
                rfc3339(due.disabled_at)
            );
            let res = self.delete_tool_with(DAEMON_ACTOR, &due.tool, &why).await;
            done.push((due.tool, res));
        }
        Ok(done)
    }

    /// Grants (`true`) or revokes platform admin rights.
    pub async fn set_user_admin(&self, actor: &str, user: &str, admin: bool) -> Result<()> {
        self.store()
            .set_user_admin(user, admin, actor, self.accounts.now())
            .await?;
        Ok(())
    }

    /// Locks a user: their certificate and tokens are refused, and the dashboard
    /// refuses their log-in.
    pub async fn lock_user(&self, actor: &str, user: &str, reason: &str) -> Result<()> {
        self.store()
            .set_user_locked(user, true, reason.trim(), actor, self.accounts.now())
            .await?;
        Ok(())
    }

    /// Unlocks a user.
    pub async fn unlock_user(&self, actor: &str, user: &str) -> Result<()> {
        self.store()
            .set_user_locked(user, false, "", actor, self.accounts.now())
            .await?;
        Ok(())
    }

    /// Records an admin action made through another API (tool create, token create,
    /// quota set, …). `detail` must not hold a secret or a password.
    pub async fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        self.store()
            .record_audit(&NewAudit {
                actor,
                action,
                target,
                detail,
                at: self.accounts.now(),
            })
            .await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        Ok(self.store().list_audit(filter).await?)
    }
}

/// Deletes the disabled tools whose date has passed, logging what it did; the daemon
/// calls it once before it reports ready, then [`deletion_worker`] every interval.
pub async fn delete_due_tools_logged(ops: &AdminOps, now: time::OffsetDateTime) {
    match ops.delete_due_tools(now).await {
        Ok(done) => {
            for (tool, res) in done {
                match res {
                    Ok(archive) => {
                        tracing::info!(%tool, archive = %archive.display(), "deleted a tool disabled 40 days ago")
                    }
                    Err(err) => {
                        tracing::warn!(%tool, error = %error_chain(&err), "could not delete a tool whose deletion was due")
                    }
                }
            }
        }
        Err(err) => {
            tracing::warn!(error = %error_chain(&err), "looking for tools due for deletion failed")
        }
    }
}

/// Deletes disabled tools whose date has passed every `interval` (the first time one
/// interval from now), until `cancel`. `clock` is injected so tests can act 40 days
/// later without waiting.
pub async fn deletion_worker(
    ops: Arc<AdminOps>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        delete_due_tools_logged(&ops, clock.now()).await;
    }
}

/// A clock `offset` ahead of another (the daemon's hidden test hook for the deletion
/// schedule).
#[derive(Clone)]
pub struct OffsetClock {
    /// The clock it is ahead of.
    pub base: Arc<dyn Clock>,
    /// How far ahead.
    pub offset: time::Duration,
}

impl Clock for OffsetClock {
    fn now(&self) -> time::OffsetDateTime {
        self.base.now() + self.offset
    }
}

/// An error with its causes, each once: `a: b: c`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// RFC 3339, as the admin command and the dashboard show times.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
