//! Issue 7 (mail): job e-mails to a tool's maintainers, received by a real SMTP server
//! (aiosmtpd, through `test_support::smtp`), with the compose period shortened to seconds.

use std::path::Path;
use std::time::Duration;

use test_support::daemon::{Daemon, DaemonOptions};
use test_support::poll::eventually;
use test_support::smtp::{ReceivedMail, SmtpSink};

use crate::bin;
use crate::jobs::{jobs, ok};

/// A daemon mailing through `sink`, composing every `period` seconds, with `extra`
/// config lines. Maintainers: alice maintains `mytool` and `othertool`; bob maintains
/// `helper`, a tool that maintains `mytool`, so bob hears of `mytool` too (one level).
fn mail_daemon(scratch: &Path, sink: &SmtpSink, period: u32, extra: &str) -> Daemon {
    let config = scratch.join("toolforged.toml");
    std::fs::write(
        &config,
        format!("mail-compose-period = \"{period}s\"\n{extra}"),
    )
    .unwrap();
    let daemon = DaemonOptions::default()
        .arg("--smtp-url")
        .arg(sink.url())
        .arg("--mail-from")
        .arg("noreply@toolforge.example")
        .arg("--config")
        .arg(&config)
        .start(bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_user("bob", "bob@example.org");
    daemon.create_tool("mytool", "alice");
    daemon.create_tool("othertool", "alice");
    daemon.create_tool("helper", "bob");
    daemon.admin_json(&["tool", "add-maintainer", "mytool", "helper"]);
    daemon
}

/// Reads the daemon's store (it runs with WAL, so a second reader is fine).
fn with_store<T>(daemon: &Daemon, read: impl AsyncFnOnce(&store::Store) -> T) -> T {
    let db = daemon.data_dir().join("toolforge.sqlite");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store::Store::open(&db).await.unwrap();
        let res = read(&store).await;
        store.close().await;
        res
    })
}

fn outbox(daemon: &Daemon) -> Vec<store::OutboxMail> {
    with_store(daemon, async |store| store.outbox_mails().await.unwrap())
}

/// No event waits to be composed and no mail waits to be sent.
fn settled(daemon: &Daemon) -> bool {
    with_store(daemon, async |store| {
        store.pending_mail_events().await.unwrap().is_empty()
            && store
                .outbox_mails()
                .await
                .unwrap()
                .iter()
                .all(|mail| mail.status != "pending")
    })
}

fn ended_runs(daemon: &Daemon, tool: &str, job: &str) -> usize {
    with_store(daemon, async |store| {
        let runs = store.recent_runs(tool, job, 1000).await.unwrap();
        runs.iter().filter(|run| run.ended_at.is_some()).count()
    })
}

/// The received mails once at least one arrived and nothing more is on its way.
fn delivered(sink: &SmtpSink, daemon: &Daemon, timeout: Duration) -> Vec<ReceivedMail> {
    eventually(timeout, || {
        let mails = sink.messages();
        (!mails.is_empty() && settled(daemon)).then_some(mails)
    })
    .expect("a job e-mail arrives")
}

const MAINTAINERS: [&str; 2] = ["alice@example.org", "bob@example.org"];

#[test]
fn an_onfailure_job_that_exits_1_mails_each_maintainer_once() {
    const TEST: &str = "an_onfailure_job_that_exits_1_mails_each_maintainer_once";
    let Some(sink) = SmtpSink::start(TEST) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let daemon = mail_daemon(scratch.path(), &sink, 1, "");
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "fails",
            "--command",
            "exit 1",
            "--image",
            "bookworm",
            "--emails",
            "onfailure",
        ],
    ) else {
        return;
    };
    ok(out);
    let mails = delivered(&sink, &daemon, Duration::from_secs(60));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(
        mail.subject,
        "[Toolforge] [mytool] notification about job fails"
    );
    assert_eq!(mail.rcpt_to, MAINTAINERS);
    assert_eq!(mail.mail_from, "noreply@toolforge.example");
    assert!(
        mail.raw
            .contains("Job 'fails' (one-off) (emails: onfailure) had 1 event:"),
        "{}",
        mail.raw
    );
    assert!(
        mail.raw.contains("the run ended: failed, exit code 1."),
        "{}",
        mail.raw
    );
}

#[test]
fn an_onfinish_job_that_succeeds_mails_once() {
    const TEST: &str = "an_onfinish_job_that_succeeds_mails_once";
    let Some(sink) = SmtpSink::start(TEST) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let daemon = mail_daemon(scratch.path(), &sink, 1, "");
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "done",
            "--command",
            "true",
            "--image",
            "bookworm",
            "--emails",
            "onfinish",
        ],
    ) else {
        return;
    };
    ok(out);
    let mails = delivered(&sink, &daemon, Duration::from_secs(60));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(
        mails[0].subject,
        "[Toolforge] [mytool] notification about job done"
    );
    assert_eq!(mails[0].rcpt_to, MAINTAINERS);
    assert!(
        mails[0]
            .raw
            .contains("the run ended: succeeded, exit code 0."),
        "{}",
        mails[0].raw
    );
}

#[test]
fn a_job_with_emails_none_mails_nothing() {
    const TEST: &str = "a_job_with_emails_none_mails_nothing";
    let Some(sink) = SmtpSink::start(TEST) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let daemon = mail_daemon(scratch.path(), &sink, 1, "");
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "quiet",
            "--command",
            "exit 1",
            "--image",
            "bookworm",
            "--emails",
            "none",
        ],
    ) else {
        return;
    };
    ok(out);
    eventually(Duration::from_secs(60), || {
        (ended_runs(&daemon, "mytool", "quiet") == 1).then_some(())
    })
    .expect("the quiet job ran");
    // A job that does mail, after the quiet one ended: its mail is the only one, and
    // it does not mention the quiet job.
    ok(jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "marker",
            "--command",
            "true",
            "--image",
            "bookworm",
            "--emails",
            "onfinish",
        ],
    )
    .unwrap());
    let mails = delivered(&sink, &daemon, Duration::from_secs(60));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(
        mails[0].subject,
        "[Toolforge] [mytool] notification about job marker"
    );
    assert!(!mails[0].raw.contains("quiet"), "{}", mails[0].raw);
}

#[test]
fn with_the_smtp_server_stopped_the_mail_arrives_after_it_starts_again() {
    const TEST: &str = "with_the_smtp_server_stopped_the_mail_arrives_after_it_starts_again";
    let Some(mut sink) = SmtpSink::start(TEST) else {
        return;
    };
    sink.stop();
    let scratch = tempfile::tempdir().unwrap();
    let daemon = mail_daemon(scratch.path(), &sink, 1, "");
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "fails",
            "--command",
            "exit 1",
            "--image",
            "bookworm",
            "--emails",
            "onfailure",
        ],
    ) else {
        return;
    };
    ok(out);
    let tried = eventually(Duration::from_secs(60), || {
        let mails = outbox(&daemon);
        mails
            .first()
            .is_some_and(|mail| mail.attempts >= 2 && mail.status == "pending")
            .then_some(mails)
    })
    .expect("delivery was tried (and failed) twice");
    assert!(
        tried[0].last_error.is_some(),
        "the failure is recorded: {tried:?}"
    );
    assert!(sink.messages().is_empty());

    sink.start_again();
    let mails = delivered(&sink, &daemon, Duration::from_secs(60));
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(
        mails[0].subject,
        "[Toolforge] [mytool] notification about job fails"
    );
    let sent = outbox(&daemon);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].status, "sent");
}

#[test]
fn a_crash_loop_mails_at_most_the_capped_number_of_mails_per_period() {
    const TEST: &str = "a_crash_loop_mails_at_most_the_capped_number_of_mails_per_period";
    const PERIOD_SECS: u32 = 4;
    let Some(sink) = SmtpSink::start(TEST) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    // One mail per period over all tools, while two tools crash-loop: without the cap
    // each period would carry a mail for each tool.
    let daemon = mail_daemon(
        scratch.path(),
        &sink,
        PERIOD_SECS,
        "mail-max-per-period = 1\njob-restart-delay = \"1s\"\njob-restart-delay-max = \"1s\"\n",
    );
    // The first run of each job waits, so both are created before anything crashes: a
    // job's creation in the store is a read-then-write transaction that SQLite refuses
    // (SQLITE_BUSY) when a concurrent write slips in between.
    let command = "test -e crashed || { touch crashed; sleep 4; }; exit 3";
    for tool in ["mytool", "othertool"] {
        let Some(out) = jobs(
            &daemon,
            tool,
            TEST,
            &[
                "run",
                "crash",
                "--command",
                command,
                "--image",
                "bookworm",
                "--continuous",
                "--emails",
                "onfailure",
            ],
        ) else {
            return;
        };
        ok(out);
    }
    eventually(Duration::from_secs(90), || {
        (ended_runs(&daemon, "mytool", "crash") >= 7
            && ended_runs(&daemon, "othertool", "crash") >= 7)
            .then_some(())
    })
    .expect("both jobs crashed seven times");
    let mails = outbox(&daemon);
    // Mails can only be about crashes since the first one: at most one per period
    // begun since then (times in the store have one-second resolution).
    let first_crash = with_store(&daemon, async |store| {
        let mut ends = Vec::new();
        for tool in ["mytool", "othertool"] {
            let runs = store.recent_runs(tool, "crash", 1000).await.unwrap();
            ends.extend(runs.iter().filter_map(|run| run.ended_at));
        }
        ends.into_iter().min().unwrap()
    });
    let window = (time::OffsetDateTime::now_utc() - first_crash).whole_seconds() + 1;
    let n_periods = window / i64::from(PERIOD_SECS) + 1;
    assert!(
        (mails.len() as i64) <= n_periods,
        "{} mails in the {window} s since the first crash ({n_periods} periods): {:#?}",
        mails.len(),
        mails.iter().map(|mail| &mail.subject).collect::<Vec<_>>()
    );
    // The cap keeps what waits, and the tool that waited longest goes first.
    for tool in ["mytool", "othertool"] {
        let subject = format!("[Toolforge] [{tool}] notification about job crash");
        assert!(
            mails.iter().any(|mail| mail.subject == subject),
            "{tool} was mailed: {mails:#?}"
        );
    }
    let received = eventually(Duration::from_secs(30), || {
        let received = sink.messages();
        (received.len() >= mails.len()).then_some(received)
    })
    .expect("the queued mails arrive");
    assert!(
        received
            .iter()
            .all(|mail| mail.rcpt_to.contains(&"alice@example.org".to_owned()))
    );
}
