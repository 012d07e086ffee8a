//! The outbox of job e-mails: events waiting to be composed (`mail_events`) and composed
//! mails waiting to be delivered (`mail_outbox`).
//!
//! What goes into a mail and when belongs to the `mail` crate; this module only keeps the
//! rows. Composing is one transaction (the mail and the events it covers), so an event is
//! mailed at most once; a mail is marked sent only after the SMTP server accepted it.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Result, Store, from_unix, to_unix};

/// A job event to be mailed, as the engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    /// Its row id (0 for one not stored yet).
    pub id: i64,
    pub tool: String,
    pub job: String,
    /// `one-off`, `scheduled` or `continuous`.
    pub job_type: String,
    /// The job's `emails` setting.
    pub emails: String,
    pub replica: u32,
    /// `started` or `ended`.
    pub event: String,
    /// For `ended`: the run's outcome, as in `job_runs`.
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub message: Option<String>,
    pub at: OffsetDateTime,
}

/// A composed mail in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: i64,
    pub tool: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

const EVENT_COLUMNS: &str =
    "id, tool, job, job_type, emails, replica, event, outcome, exit_code, signal, message, at";
const MAIL_COLUMNS: &str = "id, tool, recipients, subject, body, created_at, status, attempts, next_attempt_at, sent_at, last_error";

impl Store {
    /// Records an event to be mailed; returns its id.
    pub async fn insert_mail_event(&self, event: &MailEvent) -> Result<i64> {
        let res = sqlx::query(
            "INSERT INTO mail_events (tool, job, job_type, emails, replica, event, outcome, exit_code, signal, message, at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.tool)
        .bind(&event.job)
        .bind(&event.job_type)
        .bind(&event.emails)
        .bind(event.replica)
        .bind(&event.event)
        .bind(&event.outcome)
        .bind(event.exit_code)
        .bind(event.signal)
        .bind(&event.message)
        .bind(to_unix(event.at))
        .execute(&self.pool)
        .await?;
        Ok(res.last_insert_rowid())
    }

    /// Events not in a mail yet, oldest first.
    pub async fn pending_mail_events(&self) -> Result<Vec<MailEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM mail_events WHERE mail_id IS NULL ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_from_row).collect())
    }

    /// Deletes events nobody can be mailed about (a tool without maintainers' addresses).
    pub async fn drop_mail_events(&self, ids: &[i64]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query("DELETE FROM mail_events WHERE id = ? AND mail_id IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Puts a composed mail into the outbox and marks the events it covers, in one
    /// transaction; returns the mail's id.
    pub async fn queue_mail(
        &self,
        tool: &str,
        recipients: &[String],
        subject: &str,
        body: &str,
        event_ids: &[i64],
        now: OffsetDateTime,
    ) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO mail_outbox (tool, recipients, subject, body, created_at, next_attempt_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(tool)
        .bind(recipients.join("\n"))
        .bind(subject)
        .bind(body)
        .bind(to_unix(now))
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        let mail_id = res.last_insert_rowid();
        for id in event_ids {
            sqlx::query("UPDATE mail_events SET mail_id = ? WHERE id = ? AND mail_id IS NULL")
                .bind(mail_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(mail_id)
    }

    /// Pending mails whose next attempt is due at `now`, oldest first, at most `limit`.
    pub async fn due_mails(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<OutboxMail>> {
        let rows = sqlx::query(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?"
        ))
        .bind(to_unix(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(mail_from_row).collect())
    }

    /// When the earliest pending mail is due, if there is one.
    pub async fn next_mail_attempt(&self) -> Result<Option<OffsetDateTime>> {
        let row =
            sqlx::query("SELECT MIN(next_attempt_at) FROM mail_outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.get::<Option<i64>, _>(0).map(from_unix))
    }

    /// Every mail of the outbox, oldest first (for the admin and tests).
    pub async fn outbox_mails(&self) -> Result<Vec<OutboxMail>> {
        let rows = sqlx::query(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(mail_from_row).collect())
    }

    /// Marks a pending mail sent; false when it was not pending (never sent twice).
    pub async fn mark_mail_sent(&self, id: i64, now: OffsetDateTime) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE mail_outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ? AND status = 'pending'",
        )
        .bind(to_unix(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Records a failed attempt; the mail is tried again at `next_attempt_at`.
    pub async fn mark_mail_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(to_unix(next_attempt_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on a mail that can never be delivered.
    pub async fn mark_mail_failed(&self, id: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The addresses of a tool's maintainers: its users', and the users' of the tools that
    /// maintain it (one level), without duplicates or empty ones, sorted.
    pub async fn maintainer_emails(&self, tool: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT u.email FROM maintainers m JOIN users u ON u.name = m.member WHERE m.tool = ?1
             UNION
             SELECT u.email FROM maintainers m
               JOIN maintainers inner_m ON inner_m.tool = m.member
               JOIN users u ON u.name = inner_m.member
             WHERE m.tool = ?1
             ORDER BY 1",
        )
        .bind(tool)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| row.get::<String, _>(0))
            .filter(|email| !email.trim().is_empty())
            .collect())
    }
}

fn event_from_row(row: &SqliteRow) -> MailEvent {
    MailEvent {
        id: row.get(0),
        tool: row.get(1),
        job: row.get(2),
        job_type: row.get(3),
        emails: row.get(4),
        replica: row.get(5),
        event: row.get(6),
        outcome: row.get(7),
        exit_code: row.get(8),
        signal: row.get(9),
        message: row.get(10),
        at: from_unix(row.get(11)),
    }
}

fn mail_from_row(row: &SqliteRow) -> OutboxMail {
    let recipients: String = row.get(2);
    OutboxMail {
        id: row.get(0),
        tool: row.get(1),
        recipients: recipients.lines().map(str::to_owned).collect(),
        subject: row.get(3),
        body: row.get(4),
        created_at: from_unix(row.get(5)),
        status: row.get(6),
        attempts: row.get(7),
        next_attempt_at: from_unix(row.get(8)),
        sent_at: row.get::<Option<i64>, _>(9).map(from_unix),
        last_error: row.get(10),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::{MailEvent, NewTool, NewUser, Store};

    const NOW: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    async fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        (dir, store)
    }

    async fn user(store: &Store, name: &str, email: &str) {
        let new = NewUser {
            name,
            email,
            password_hash: "x",
            is_admin: false,
            now: NOW,
        };
        store.create_user(new).await.unwrap();
    }

    async fn tool(store: &Store, name: &str, maintainer: &str) {
        let new = NewTool {
            name,
            title: "",
            description: "",
            maintainer,
            now: NOW,
        };
        store.create_tool(new).await.unwrap();
    }

    fn event(tool: &str) -> MailEvent {
        MailEvent {
            id: 0,
            tool: tool.to_owned(),
            job: "crash".to_owned(),
            job_type: "one-off".to_owned(),
            emails: "onfailure".to_owned(),
            replica: 0,
            event: "ended".to_owned(),
            outcome: Some("failed".to_owned()),
            exit_code: Some(1),
            signal: None,
            message: None,
            at: NOW,
        }
    }

    #[tokio::test]
    async fn maintainers_of_maintaining_tools_are_mailed_one_level_deep() {
        let (_dir, store) = open().await;
        user(&store, "alice", "alice@example.org").await;
        user(&store, "bob", "bob@example.org").await;
        user(&store, "carol", "carol@example.org").await;
        tool(&store, "mytool", "alice").await;
        tool(&store, "helper", "bob").await;
        tool(&store, "outer", "carol").await;
        store.add_maintainer("mytool", "helper", NOW).await.unwrap();
        store.add_maintainer("helper", "alice", NOW).await.unwrap();
        store.add_maintainer("helper", "outer", NOW).await.unwrap();
        let emails = store.maintainer_emails("mytool").await.unwrap();
        // carol maintains `outer`, which maintains `helper`: two levels away.
        assert_eq!(emails, ["alice@example.org", "bob@example.org"]);
    }

    #[tokio::test]
    async fn a_queued_mail_covers_its_events_and_is_marked_sent_once() {
        let (_dir, store) = open().await;
        let first = store.insert_mail_event(&event("mytool")).await.unwrap();
        let second = store.insert_mail_event(&event("mytool")).await.unwrap();
        let pending = store.pending_mail_events().await.unwrap();
        assert_eq!(
            pending.iter().map(|e| e.id).collect::<Vec<_>>(),
            [first, second]
        );
        let to = ["a@example.org".to_owned(), "b@example.org".to_owned()];
        let id = store
            .queue_mail("mytool", &to, "subject", "body", &[first, second], NOW)
            .await
            .unwrap();
        assert!(store.pending_mail_events().await.unwrap().is_empty());
        let due = store.due_mails(NOW, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].recipients, to);
        let later = NOW + time::Duration::seconds(5);
        store.mark_mail_retry(id, "refused", later).await.unwrap();
        assert!(store.due_mails(NOW, 10).await.unwrap().is_empty());
        assert_eq!(store.next_mail_attempt().await.unwrap(), Some(later));
        assert!(store.mark_mail_sent(id, later).await.unwrap());
        assert!(!store.mark_mail_sent(id, later).await.unwrap());
        let all = store.outbox_mails().await.unwrap();
        assert_eq!((all[0].status.as_str(), all[0].attempts), ("sent", 1));
        assert_eq!(store.next_mail_attempt().await.unwrap(), None);
    }
}
