//! The dashboard's tables: browser sessions, sign-ups and e-mail confirmation, SSH keys
//! and Toolforge membership requests (migration `0008_dashboard.sql`).
//!
//! Secrets that arrive from a browser (session ids, confirmation tokens) are stored as
//! their SHA-256 only: the caller hashes them, this module never sees them in clear.
//! A user with no `dashboard_signups` row was made by an admin and counts as confirmed
//! and a member.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Error, Result, Store, from_unix, to_unix};

/// A stored browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The logged-in user; `None` for an anonymous visitor.
    pub user_name: Option<String>,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Messages for the next page, one `level<TAB>text` per line.
    pub flash: String,
    /// When the session ends.
    pub expires_at: OffsetDateTime,
}

/// What the dashboard knows about a user's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStanding {
    /// Whether the user signed up on the dashboard (else an admin made the account).
    pub signed_up: bool,
    /// Whether the e-mail address is confirmed (always for admin-made accounts).
    pub email_confirmed: bool,
    /// Whether the user is a Toolforge member (approved request, or admin-made account).
    pub member: bool,
}

/// A user's SSH public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKeyRecord {
    /// Row id, used to delete it.
    pub id: i64,
    /// `ssh-ed25519`, `ssh-rsa`, ...
    pub key_type: String,
    /// The base64 blob as given.
    pub key_blob: String,
    /// The comment after the blob.
    pub comment: String,
    /// `SHA256:<base64 without padding>`.
    pub fingerprint: String,
    /// Key size in bits, when the type has one.
    pub bits: Option<u32>,
    /// When it was added.
    pub created_at: OffsetDateTime,
}

/// The status of a membership request, Striker's `AccessRequest` statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessStatus {
    /// Waiting for an admin.
    Pending,
    /// An admin asked the applicant something.
    Feedback,
    /// Granted: the user is a member.
    Approved,
    /// Refused.
    Declined,
}

impl AccessStatus {
    /// Every status, in workflow order.
    pub const ALL: [AccessStatus; 4] = [
        AccessStatus::Pending,
        AccessStatus::Feedback,
        AccessStatus::Approved,
        AccessStatus::Declined,
    ];

    /// The word stored in the database and used in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessStatus::Pending => "pending",
            AccessStatus::Feedback => "feedback",
            AccessStatus::Approved => "approved",
            AccessStatus::Declined => "declined",
        }
    }

    /// What people read.
    pub fn label(self) -> &'static str {
        match self {
            AccessStatus::Pending => "Pending",
            AccessStatus::Feedback => "Feedback needed",
            AccessStatus::Approved => "Approved",
            AccessStatus::Declined => "Declined",
        }
    }

    /// Parses the stored word.
    pub fn parse(text: &str) -> Option<AccessStatus> {
        AccessStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Pending or feedback needed.
    pub fn is_open(self) -> bool {
        matches!(self, AccessStatus::Pending | AccessStatus::Feedback)
    }
}

/// A membership request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Row id, in URLs.
    pub id: i64,
    /// The applicant.
    pub user_name: String,
    /// Why they want to join.
    pub reason: String,
    /// Where it is in the workflow.
    pub status: AccessStatus,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// Last change of status or comment.
    pub updated_at: OffsetDateTime,
    /// The admin who approved or declined it.
    pub resolved_by: Option<String>,
    /// When it was approved or declined.
    pub resolved_at: Option<OffsetDateTime>,
    /// Hidden from everyone but admins.
    pub suppressed: bool,
}

/// A comment on a membership request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessComment {
    /// Who wrote it.
    pub author: String,
    /// What they wrote.
    pub body: String,
    /// When.
    pub created_at: OffsetDateTime,
}

/// Which requests the admin queue lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFilter {
    /// Every request.
    All,
    /// Pending and feedback needed.
    Open,
    /// One status.
    Status(AccessStatus),
}

impl Store {
    /// Stores a new session under the SHA-256 of its id.
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_name: Option<&str>,
        csrf_token: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id_hash, user_name, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(user_name)
        .bind(csrf_token)
        .bind(to_unix(now))
        .bind(to_unix(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this id hash.
    pub async fn get_session(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT user_name, csrf_token, flash, expires_at FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?",
        )
        .bind(id_hash)
        .bind(to_unix(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| SessionRecord {
            user_name: row.get(0),
            csrf_token: row.get(1),
            flash: row.get(2),
            expires_at: from_unix(row.get(3)),
        }))
    }

    /// Deletes one session (log-out).
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes every session of a user except `keep` (after a password change).
    pub async fn delete_user_sessions(&self, user_name: &str, keep: Option<&str>) -> Result<u64> {
        let res = sqlx::query(
            "DELETE FROM dashboard_sessions WHERE user_name = ? AND id_hash IS NOT COALESCE(?, '')",
        )
        .bind(user_name)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    /// Deletes sessions and confirmation tokens that expired before `now`.
    pub async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let res = sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= ?")
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM email_confirmations WHERE expires_at <= ?")
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    /// Appends a flash message (`level<TAB>text`) to a session.
    pub async fn push_flash(&self, id_hash: &str, level: &str, text: &str) -> Result<()> {
        let line = format!("{level}\t{}\n", text.replace(['\n', '\r'], " "));
        sqlx::query("UPDATE dashboard_sessions SET flash = flash || ? WHERE id_hash = ?")
            .bind(line)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes (reads and clears) a session's flash messages.
    pub async fn take_flash(&self, id_hash: &str) -> Result<String> {
        let mut tx = self.begin_write().await?;
        let flash: Option<String> =
            sqlx::query("SELECT flash FROM dashboard_sessions WHERE id_hash = ? AND flash != ''")
                .bind(id_hash)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.get(0));
        if flash.is_some() {
            sqlx::query("UPDATE dashboard_sessions SET flash = '' WHERE id_hash = ?")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(flash.unwrap_or_default())
    }

    /// Records that `user_name` signed up on the dashboard (unconfirmed, not a member).
    pub async fn record_signup(&self, user_name: &str, now: OffsetDateTime) -> Result<()> {
        sqlx::query("INSERT INTO dashboard_signups (user_name, signed_up_at) VALUES (?, ?)")
            .bind(user_name)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user's standing: signed up, confirmed, member.
    pub async fn user_standing(&self, user_name: &str) -> Result<UserStanding> {
        let row = sqlx::query(
            "SELECT email_confirmed_at IS NOT NULL, member_since IS NOT NULL FROM dashboard_signups WHERE user_name = ?",
        )
        .bind(user_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => UserStanding {
                signed_up: true,
                email_confirmed: row.get(0),
                member: row.get(1),
            },
            None => UserStanding {
                signed_up: false,
                email_confirmed: true,
                member: true,
            },
        })
    }

    /// Users who signed up and have not confirmed their address, oldest first, with
    /// their address and sign-up time (for admins, who confirm them by hand when no mail
    /// can be sent).
    pub async fn unconfirmed_signups(&self) -> Result<Vec<(String, String, OffsetDateTime)>> {
        let rows = sqlx::query(
            "SELECT s.user_name, u.email, s.signed_up_at FROM dashboard_signups s JOIN users u ON u.name = s.user_name
             WHERE s.email_confirmed_at IS NULL ORDER BY s.signed_up_at, s.user_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), row.get(1), from_unix(row.get(2))))
            .collect())
    }

    /// Marks a signed-up user's address confirmed (an admin's confirmation, too).
    pub async fn confirm_email(&self, user_name: &str, now: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "UPDATE dashboard_signups SET email_confirmed_at = COALESCE(email_confirmed_at, ?) WHERE user_name = ?",
        )
        .bind(to_unix(now))
        .bind(user_name)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM email_confirmations WHERE user_name = ?")
            .bind(user_name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a confirmation token's hash for `user_name` and `email`, replacing older ones.
    pub async fn create_email_confirmation(
        &self,
        token_hash: &str,
        user_name: &str,
        email: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM email_confirmations WHERE user_name = ?")
            .bind(user_name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO email_confirmations (token_hash, user_name, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_name)
        .bind(email)
        .bind(to_unix(now))
        .bind(to_unix(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses a confirmation token once: when it is known, unexpired and the address is
    /// still the user's, confirms it and returns the user's name. The token is gone
    /// afterwards either way.
    pub async fn use_email_confirmation(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM email_confirmations WHERE token_hash = ? RETURNING user_name, email, expires_at",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user_name: String = row.get(0);
        let email: String = row.get(1);
        let expires_at: i64 = row.get(2);
        let current = sqlx::query("SELECT email FROM users WHERE name = ?")
            .bind(&user_name)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get::<String, _>(0));
        let ok = expires_at > to_unix(now) && current.as_deref() == Some(email.as_str());
        if ok {
            sqlx::query(
                "UPDATE dashboard_signups SET email_confirmed_at = COALESCE(email_confirmed_at, ?) WHERE user_name = ?",
            )
            .bind(to_unix(now))
            .bind(&user_name)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ok.then_some(user_name))
    }

    /// Adds an SSH key; refuses the same key twice for one user.
    pub async fn add_ssh_key(
        &self,
        user_name: &str,
        key: &SshKeyRecord,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let res = sqlx::query(
            "INSERT INTO ssh_keys (user_name, key_type, key_blob, comment, fingerprint, bits, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(user_name)
        .bind(&key.key_type)
        .bind(&key.key_blob)
        .bind(&key.comment)
        .bind(&key.fingerprint)
        .bind(key.bits)
        .bind(to_unix(now))
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "the key {} is already on your account",
                key.fingerprint
            )));
        }
        Ok(res.last_insert_rowid())
    }

    /// A user's SSH keys, oldest first.
    pub async fn ssh_keys(&self, user_name: &str) -> Result<Vec<SshKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, key_type, key_blob, comment, fingerprint, bits, created_at FROM ssh_keys WHERE user_name = ? ORDER BY id",
        )
        .bind(user_name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| SshKeyRecord {
                id: row.get(0),
                key_type: row.get(1),
                key_blob: row.get(2),
                comment: row.get(3),
                fingerprint: row.get(4),
                bits: row
                    .get::<Option<i64>, _>(5)
                    .and_then(|b| u32::try_from(b).ok()),
                created_at: from_unix(row.get(6)),
            })
            .collect())
    }

    /// Deletes one of the user's keys; false when the user has no key with that id.
    pub async fn delete_ssh_key(&self, user_name: &str, id: i64) -> Result<bool> {
        let res = sqlx::query("DELETE FROM ssh_keys WHERE user_name = ? AND id = ?")
            .bind(user_name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Opens a membership request; refuses a second open one.
    pub async fn create_access_request(
        &self,
        user_name: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let open = sqlx::query(
            "SELECT id FROM access_requests WHERE user_name = ? AND status IN ('pending', 'feedback')",
        )
        .bind(user_name)
        .fetch_optional(&mut *tx)
        .await?;
        if open.is_some() {
            return Err(Error::Conflict(format!(
                "'{user_name}' already has an open membership request"
            )));
        }
        let res = sqlx::query(
            "INSERT INTO access_requests (user_name, reason, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(user_name)
        .bind(reason)
        .bind(to_unix(now))
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(res.last_insert_rowid())
    }

    /// One membership request.
    pub async fn get_access_request(&self, id: i64) -> Result<Option<AccessRequest>> {
        let row = sqlx::query(&format!("{ACCESS_SELECT} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(access_from_row))
    }

    /// The user's requests, newest first (suppressed ones too: callers decide).
    pub async fn access_requests_of(&self, user_name: &str) -> Result<Vec<AccessRequest>> {
        let rows = sqlx::query(&format!(
            "{ACCESS_SELECT} WHERE user_name = ? ORDER BY id DESC"
        ))
        .bind(user_name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(access_from_row).collect())
    }

    /// Requests matching `filter`, oldest first; suppressed ones only when asked for.
    pub async fn list_access_requests(
        &self,
        filter: AccessFilter,
        include_suppressed: bool,
    ) -> Result<Vec<AccessRequest>> {
        let status_clause = match filter {
            AccessFilter::All => String::from("1"),
            AccessFilter::Open => String::from("status IN ('pending', 'feedback')"),
            AccessFilter::Status(status) => format!("status = '{}'", status.as_str()),
        };
        let suppressed_clause = if include_suppressed {
            "1"
        } else {
            "suppressed = 0"
        };
        let rows = sqlx::query(&format!(
            "{ACCESS_SELECT} WHERE {status_clause} AND {suppressed_clause} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(access_from_row).collect())
    }

    /// One page of the admin queue, newest first: at most `limit` requests of `filter`
    /// whose id is below `before` (all when `None`). A range scan of the primary key,
    /// so a page costs the same however many requests there are.
    pub async fn list_access_requests_page(
        &self,
        filter: AccessFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AccessRequest>> {
        let status_clause = match filter {
            AccessFilter::All => String::from("1"),
            AccessFilter::Open => String::from("status IN ('pending', 'feedback')"),
            AccessFilter::Status(status) => format!("status = '{}'", status.as_str()),
        };
        let rows = sqlx::query(&format!(
            "{ACCESS_SELECT} WHERE {status_clause} AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(access_from_row).collect())
    }

    /// Sets a request's status; approving also makes the user a member. Approved and
    /// declined requests are closed: their status no longer changes.
    pub async fn set_access_status(
        &self,
        id: i64,
        status: AccessStatus,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<AccessRequest> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("{ACCESS_SELECT} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let request = row
            .as_ref()
            .map(access_from_row)
            .ok_or_else(|| Error::NotFound {
                what: "membership request",
                name: id.to_string(),
            })?;
        if !request.status.is_open() {
            return Err(Error::Conflict(format!(
                "membership request {id} is already {}: a closed request does not change",
                request.status.label().to_lowercase()
            )));
        }
        let resolved = !status.is_open();
        sqlx::query(
            "UPDATE access_requests SET status = ?, updated_at = ?, resolved_by = CASE WHEN ? THEN ? ELSE resolved_by END, resolved_at = CASE WHEN ? THEN ? ELSE resolved_at END WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(to_unix(now))
        .bind(resolved)
        .bind(by)
        .bind(resolved)
        .bind(to_unix(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if status == AccessStatus::Approved {
            sqlx::query(
                "INSERT INTO dashboard_signups (user_name, signed_up_at, email_confirmed_at, member_since) VALUES (?, ?, ?, ?)
                 ON CONFLICT(user_name) DO UPDATE SET member_since = COALESCE(member_since, excluded.member_since)",
            )
            .bind(&request.user_name)
            .bind(to_unix(now))
            .bind(to_unix(now))
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(AccessRequest {
            status,
            updated_at: from_unix(to_unix(now)),
            ..request
        })
    }

    /// Suppresses or restores a request.
    pub async fn set_access_suppressed(&self, id: i64, suppressed: bool) -> Result<()> {
        let res = sqlx::query("UPDATE access_requests SET suppressed = ? WHERE id = ?")
            .bind(suppressed)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "membership request",
                name: id.to_string(),
            });
        }
        Ok(())
    }

    /// Adds a comment to a request and, when given, moves an open request to
    /// `new_status` in the same transaction (an admin's comment asks for feedback, the
    /// applicant's answer returns it to pending).
    pub async fn comment_access_request(
        &self,
        id: i64,
        author: &str,
        body: &str,
        new_status: Option<AccessStatus>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> = sqlx::query("SELECT status FROM access_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get(0));
        let Some(status) = status.as_deref().and_then(AccessStatus::parse) else {
            return Err(Error::NotFound {
                what: "membership request",
                name: id.to_string(),
            });
        };
        sqlx::query(
            "INSERT INTO access_request_comments (request_id, author, body, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(author)
        .bind(body)
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        let status = match new_status {
            Some(new) if status.is_open() => new,
            _ => status,
        };
        sqlx::query("UPDATE access_requests SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(to_unix(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The comments of a request, oldest first.
    pub async fn access_request_comments(&self, id: i64) -> Result<Vec<AccessComment>> {
        let rows = sqlx::query(
            "SELECT author, body, created_at FROM access_request_comments WHERE request_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| AccessComment {
                author: row.get(0),
                body: row.get(1),
                created_at: from_unix(row.get(2)),
            })
            .collect())
    }
}

const ACCESS_SELECT: &str = "SELECT id, user_name, reason, status, created_at, updated_at, resolved_by, resolved_at, suppressed FROM access_requests";

fn access_from_row(row: &SqliteRow) -> AccessRequest {
    AccessRequest {
        id: row.get(0),
        user_name: row.get(1),
        reason: row.get(2),
        status: AccessStatus::parse(row.get::<&str, _>(3)).unwrap_or(AccessStatus::Pending),
        created_at: from_unix(row.get(4)),
        updated_at: from_unix(row.get(5)),
        resolved_by: row.get(6),
        resolved_at: row.get::<Option<i64>, _>(7).map(from_unix),
        suppressed: row.get(8),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::*;

    const NOW: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    async fn store_with_signup(name: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        store
            .create_user(NewUser {
                name,
                email: "a@example.org",
                password_hash: "x",
                is_admin: false,
                now: NOW,
            })
            .await
            .unwrap();
        store.record_signup(name, NOW).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_confirmation_token_works_once_and_only_before_it_expires() {
        let (_dir, store) = store_with_signup("alice").await;
        assert!(!store.user_standing("alice").await.unwrap().email_confirmed);
        let expires = NOW + time::Duration::hours(1);
        store
            .create_email_confirmation("late", "alice", "a@example.org", NOW, expires)
            .await
            .unwrap();
        let late = expires + time::Duration::seconds(1);
        assert_eq!(
            store.use_email_confirmation("late", late).await.unwrap(),
            None
        );
        store
            .create_email_confirmation("t1", "alice", "a@example.org", NOW, expires)
            .await
            .unwrap();
        assert_eq!(
            store
                .use_email_confirmation("t1", NOW)
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert!(store.user_standing("alice").await.unwrap().email_confirmed);
        assert_eq!(store.use_email_confirmation("t1", NOW).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_token_for_an_address_the_user_no_longer_has_confirms_nothing() {
        let (_dir, store) = store_with_signup("bob").await;
        let expires = NOW + time::Duration::hours(1);
        store
            .create_email_confirmation("t", "bob", "old@example.org", NOW, expires)
            .await
            .unwrap();
        assert_eq!(store.use_email_confirmation("t", NOW).await.unwrap(), None);
        assert!(!store.user_standing("bob").await.unwrap().email_confirmed);
    }

    #[tokio::test]
    async fn sessions_expire_and_flash_messages_are_read_once() {
        let (_dir, store) = store_with_signup("carol").await;
        let expires = NOW + time::Duration::hours(1);
        store
            .create_session("h", Some("carol"), "tok", NOW, expires)
            .await
            .unwrap();
        store.push_flash("h", "success", "one\ntwo").await.unwrap();
        assert_eq!(store.take_flash("h").await.unwrap(), "success\tone two\n");
        assert_eq!(store.take_flash("h").await.unwrap(), "");
        assert!(store.get_session("h", NOW).await.unwrap().is_some());
        assert!(store.get_session("h", expires).await.unwrap().is_none());
        assert_eq!(store.purge_expired_sessions(expires).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_open_request_blocks_a_second_and_a_closed_one_never_changes() {
        let (_dir, store) = store_with_signup("dave").await;
        let id = store.create_access_request("dave", "r", NOW).await.unwrap();
        assert!(matches!(
            store.create_access_request("dave", "again", NOW).await,
            Err(Error::Conflict(_))
        ));
        store
            .comment_access_request(id, "admin", "why?", Some(AccessStatus::Feedback), NOW)
            .await
            .unwrap();
        let request = store.get_access_request(id).await.unwrap().unwrap();
        assert_eq!(request.status, AccessStatus::Feedback);
        store
            .set_access_status(id, AccessStatus::Declined, "admin", NOW)
            .await
            .unwrap();
        assert!(matches!(
            store
                .set_access_status(id, AccessStatus::Approved, "admin", NOW)
                .await,
            Err(Error::Conflict(_))
        ));
        assert!(!store.user_standing("dave").await.unwrap().member);
        // A declined applicant may ask again.
        store
            .create_access_request("dave", "please", NOW)
            .await
            .unwrap();
    }
}
