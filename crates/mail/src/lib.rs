//! Job e-mails: tell a tool's maintainers what its jobs did, as the original
//! jobs-emailer does (toolforge-reference.md §0 and §1.6).
//!
//! Durable by construction: [`Mailer::record`] writes an event to the store's outbox
//! before anything else; the composer turns a period's events into one mail per tool (at
//! most [`MailConfig::max_mails_per_period`] mails per period, so a crash loop cannot
//! flood anyone), and the sender delivers them over SMTP, retrying with back-off while
//! the server is unreachable. A mail is marked sent once the server accepted it, and only
//! pending mails are sent, so none is sent twice by a running daemon. A daemon killed
//! between the server's acceptance and the mark sends that one mail again at its next
//! start (at least once, never lost); its `Message-ID` is the same both times.
//!
//! Recipients are resolved when a mail is composed: the e-mail addresses of the tool's
//! maintainers, and of the maintainers of tools that maintain it (one level).
//! Bodies and addresses are never logged above debug.

pub mod compose;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use store::{MailEvent, OutboxMail, Store};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The outbox's `tool` of mails that are not about a tool (no tool has this name:
/// tool names start with a-z).
pub const PLATFORM_MAIL_TOOL: &str = "(platform)";

/// Errors of the mailer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SMTP URL is not one lettre understands.
    #[error("invalid SMTP URL")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    /// The sender address does not parse.
    #[error("invalid sender address '{address}'")]
    From {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    /// The store failed.
    #[error("store")]
    Store(#[from] store::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the mailer works.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:port` (TLS); credentials as `user:password@`.
    pub smtp_url: String,
    /// The sender, e.g. `noreply@toolforge.org`.
    pub from: String,
    /// How long events are collected before they are mailed (the original: 400 s).
    pub compose_period: Duration,
    /// At most this many mails are composed per period (the original: 10 per loop);
    /// the events of other tools wait for the next period.
    pub max_mails_per_period: u32,
    /// First delay before a failed delivery is tried again; it doubles up to `retry_max`.
    pub retry_base: Duration,
    /// Longest delay between two delivery attempts.
    pub retry_max: Duration,
    /// Limit on one SMTP conversation.
    pub send_timeout: Duration,
}

impl MailConfig {
    /// The original's timings for `smtp_url` and `from`.
    pub fn new(smtp_url: String, from: String) -> Self {
        Self {
            smtp_url,
            from,
            compose_period: Duration::from_secs(400),
            max_mails_per_period: 10,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// A job event as the engine reports it, before the `emails` setting is applied.
#[derive(Debug, Clone)]
pub struct JobEvent<'a> {
    pub tool: &'a str,
    pub job: &'a str,
    /// `one-off`, `scheduled` or `continuous`.
    pub job_type: &'a str,
    /// The job's `emails` setting: `none`, `all`, `onfinish` or `onfailure`.
    pub emails: &'a str,
    pub replica: u32,
    /// `None`: the run started; `Some`: it ended with this outcome (`succeeded`,
    /// `failed`, `oom`, `killed`, `timeout`, ...).
    pub outcome: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub message: Option<&'a str>,
    pub at: OffsetDateTime,
}

/// The mailer: the outbox's writer, composer and sender.
pub struct Mailer {
    store: Store,
    config: MailConfig,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// Wakes the sender when the composer queued mail.
    wake: tokio::sync::Notify,
}

impl Mailer {
    /// A mailer over `store`; checks the URL and the sender address. Call
    /// [`Mailer::start`] to run its workers.
    pub fn new(store: Store, config: MailConfig) -> Result<Arc<Self>> {
        let from: Mailbox = config.from.parse().map_err(|source| Error::From {
            address: config.from.clone(),
            source,
        })?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(Error::SmtpUrl)?
            .timeout(Some(config.send_timeout))
            .build();
        Ok(Arc::new(Self {
            store,
            config,
            from,
            transport,
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// Writes `event` to the outbox when the job's setting asks for it; returns whether
    /// it did.
    pub async fn record(&self, event: &JobEvent<'_>) -> Result<bool> {
        let kind = if event.outcome.is_some() {
            "ended"
        } else {
            "started"
        };
        if !compose::wanted(event.emails, kind, event.outcome) {
            return Ok(false);
        }
        let row = MailEvent {
            id: 0,
            tool: event.tool.to_owned(),
            job: event.job.to_owned(),
            job_type: event.job_type.to_owned(),
            emails: event.emails.to_owned(),
            replica: event.replica,
            event: kind.to_owned(),
            outcome: event.outcome.map(str::to_owned),
            exit_code: event.exit_code,
            signal: event.signal,
            message: event.message.map(str::to_owned),
            at: event.at,
        };
        self.store.insert_mail_event(&row).await?;
        Ok(true)
    }

    /// Queues a platform mail that is not about a job (the dashboard's confirmation
    /// links and membership notifications) and wakes the sender; it is delivered and
    /// retried like job e-mails. Returns the outbox id.
    pub async fn send_platform_mail(
        &self,
        recipients: &[String],
        subject: &str,
        body: &str,
    ) -> Result<i64> {
        let id = self
            .store
            .queue_mail(
                PLATFORM_MAIL_TOOL,
                recipients,
                subject,
                body,
                &[],
                OffsetDateTime::now_utc(),
            )
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Runs the composer and the sender on `tracker` until `cancel` fires.
    pub fn start(self: &Arc<Self>, tracker: &TaskTracker, cancel: CancellationToken) {
        let composer = self.clone();
        let composer_cancel = cancel.clone();
        tracker.spawn(async move { composer.run_composer(composer_cancel).await });
        let sender = self.clone();
        tracker.spawn(async move { sender.run_sender(cancel).await });
    }

    /// Composes the pending events into mails: one per tool, at most
    /// `max_mails_per_period`; returns how many were queued.
    pub async fn compose_once(&self, now: OffsetDateTime) -> Result<usize> {
        let events = self.store.pending_mail_events().await?;
        let mut n_queued = 0;
        for draft in compose::compose(&events) {
            if n_queued >= self.config.max_mails_per_period as usize {
                tracing::info!(tool = %draft.tool, events = draft.event_ids.len(), "mail limit of this period reached; the events wait for the next");
                continue;
            }
            let recipients = self.store.maintainer_emails(&draft.tool).await?;
            if recipients.is_empty() {
                tracing::info!(tool = %draft.tool, events = draft.event_ids.len(), "no maintainer of the tool has an e-mail address; events dropped");
                self.store.drop_mail_events(&draft.event_ids).await?;
                continue;
            }
            let id = self
                .store
                .queue_mail(
                    &draft.tool,
                    &recipients,
                    &draft.subject,
                    &draft.body,
                    &draft.event_ids,
                    now,
                )
                .await?;
            tracing::info!(tool = %draft.tool, mail = id, events = draft.event_ids.len(), recipients = recipients.len(), "queued a job e-mail");
            n_queued += 1;
        }
        Ok(n_queued)
    }

    /// Tries every mail that is due; failures are recorded for a later attempt.
    pub async fn send_due(&self, now: OffsetDateTime) -> Result<()> {
        for mail in self.store.due_mails(now, 100).await? {
            self.send_one(&mail).await?;
        }
        Ok(())
    }

    async fn send_one(&self, mail: &OutboxMail) -> Result<()> {
        let message = match self.message(mail) {
            Ok(message) => message,
            Err(reason) => {
                tracing::warn!(mail = mail.id, tool = %mail.tool, %reason, "a job e-mail can never be sent; giving up");
                return Ok(self.store.mark_mail_failed(mail.id, &reason).await?);
            }
        };
        let res = tokio::time::timeout(self.config.send_timeout, self.transport.send(message))
            .await
            .map_err(|_| None)
            .and_then(|res| res.map_err(Some));
        match res {
            Ok(_) => {
                let now = OffsetDateTime::now_utc();
                self.store.mark_mail_sent(mail.id, now).await?;
                tracing::info!(mail = mail.id, tool = %mail.tool, recipients = mail.recipients.len(), "sent a job e-mail");
            }
            Err(Some(err)) if err.is_permanent() => {
                let reason = error_chain(&err);
                tracing::warn!(mail = mail.id, tool = %mail.tool, %reason, "the SMTP server refused a job e-mail for good");
                self.store.mark_mail_failed(mail.id, &reason).await?;
            }
            Err(err) => {
                let reason = err.map_or_else(
                    || "the SMTP conversation timed out".to_owned(),
                    |err| error_chain(&err),
                );
                let delay = retry_delay(
                    self.config.retry_base,
                    self.config.retry_max,
                    mail.attempts + 1,
                );
                let next = OffsetDateTime::now_utc() + delay;
                tracing::warn!(mail = mail.id, tool = %mail.tool, attempts = mail.attempts + 1, ?delay, %reason, "could not send a job e-mail; trying again later");
                self.store.mark_mail_retry(mail.id, &reason, next).await?;
            }
        }
        Ok(())
    }

    /// The message of an outbox mail; `Err` when it can never be built.
    fn message(&self, mail: &OutboxMail) -> Result<Message, String> {
        let domain = self.from.email.domain().to_owned();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .message_id(Some(format!(
                "<toolforge-job-mail-{}.{}@{domain}>",
                mail.id,
                mail.created_at.unix_timestamp()
            )))
            .header(ContentType::TEXT_PLAIN);
        let mut n_valid = 0;
        for recipient in &mail.recipients {
            match recipient.parse::<Mailbox>() {
                Ok(mailbox) => {
                    builder = builder.to(mailbox);
                    n_valid += 1;
                }
                Err(_) => {
                    tracing::warn!(mail = mail.id, tool = %mail.tool, "skipping a maintainer's invalid e-mail address")
                }
            }
        }
        if n_valid == 0 {
            return Err("no valid recipient".to_owned());
        }
        builder
            .body(mail.body.clone())
            .map_err(|err| error_chain(&err))
    }

    async fn run_composer(&self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.config.compose_period) => {}
            }
            match self.compose_once(OffsetDateTime::now_utc()).await {
                Ok(0) => {}
                Ok(_) => self.wake.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), "composing job e-mails failed")
                }
            }
        }
    }

    async fn run_sender(&self, cancel: CancellationToken) {
        loop {
            if let Err(err) = self.send_due(OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %error_chain(&err), "sending job e-mails failed");
            }
            let wait = match self.store.next_mail_attempt().await {
                Ok(Some(at)) => {
                    let secs = (at - OffsetDateTime::now_utc()).as_seconds_f64();
                    // Stored times have one-second resolution: never spin on one that is due.
                    Duration::from_secs_f64(secs.clamp(0.2, 60.0))
                }
                Ok(None) => Duration::from_secs(60),
                Err(_) => self.config.retry_base,
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// `smtp_url` without credentials, for logs.
pub fn redacted_url(smtp_url: &str) -> String {
    match smtp_url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            let host = host.split('?').next().unwrap_or(host);
            format!("{scheme}://{host}")
        }
        None => "(unparsable URL)".to_owned(),
    }
}

/// The delay before attempt `attempt + 1`: `base`, doubling, at most `max`.
pub fn retry_delay(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(max)
}

/// An error with its causes, each once: `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_in_the_logged_url() {
        assert_eq!(
            redacted_url("smtps://user:secret@mail.example.org:465"),
            "smtps://mail.example.org:465"
        );
        assert_eq!(
            redacted_url("smtp://127.0.0.1:2525?tls=required"),
            "smtp://127.0.0.1:2525"
        );
    }

    #[test]
    fn retries_back_off_from_one_second_to_five_minutes() {
        let delays: Vec<u64> = (1..=11)
            .map(|n| retry_delay(Duration::from_secs(1), Duration::from_secs(300), n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
