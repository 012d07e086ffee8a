//! What is mailed, and how it reads: the pure core of the mailer, no IO.
//!
//! As the original jobs-emailer (toolforge-reference.md §1.6): `none` never mails,
//! `onfailure` mails runs that ended without success, `onfinish` every end of a run, and
//! `all` also starts. Events are batched per tool: one mail per tool per compose period,
//! subject `[Toolforge] [<tool>] notification about job <name>` (or `N jobs`), the body
//! listing per job what happened.

use std::collections::BTreeMap;

use store::MailEvent;

/// At most this many events of one job are listed in one mail; a crash loop is summed up.
pub const MAX_EVENTS_LISTED: usize = 10;

/// Whether a job whose `emails` setting is `emails` is mailed about an `event`
/// (`started` or `ended`, with the run's `outcome` for `ended`).
pub fn wanted(emails: &str, event: &str, outcome: Option<&str>) -> bool {
    match emails {
        "all" => true,
        "onfinish" => event == "ended",
        "onfailure" => event == "ended" && outcome != Some("succeeded"),
        _ => false,
    }
}

/// A mail composed from a tool's events, before it has recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub tool: String,
    pub subject: String,
    pub body: String,
    /// The events the mail covers.
    pub event_ids: Vec<i64>,
}

/// One draft per tool, tools in the order of their oldest event.
pub fn compose(events: &[MailEvent]) -> Vec<Draft> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_tool: BTreeMap<&str, Vec<&MailEvent>> = BTreeMap::new();
    for event in events {
        let entry = by_tool.entry(&event.tool).or_default();
        if entry.is_empty() {
            order.push(&event.tool);
        }
        entry.push(event);
    }
    order
        .into_iter()
        .map(|tool| draft(tool, &by_tool[tool]))
        .collect()
}

fn draft(tool: &str, events: &[&MailEvent]) -> Draft {
    let mut jobs: Vec<&str> = Vec::new();
    let mut by_job: BTreeMap<&str, Vec<&MailEvent>> = BTreeMap::new();
    for event in events {
        let entry = by_job.entry(&event.job).or_default();
        if entry.is_empty() {
            jobs.push(&event.job);
        }
        entry.push(event);
    }
    let subject = match jobs.as_slice() {
        [job] => format!("[Toolforge] [{tool}] notification about job {job}"),
        _ => format!(
            "[Toolforge] [{tool}] notification about {} jobs",
            jobs.len()
        ),
    };
    let mut body = format!(
        "This is the Toolforge jobs framework, with news about the jobs of the tool '{tool}'.\n"
    );
    for job in &jobs {
        let job_events = &by_job[job];
        let first = job_events[0];
        let n_events = job_events.len();
        let plural = if n_events == 1 { "" } else { "s" };
        body.push_str(&format!(
            "\nJob '{job}' ({}) (emails: {}) had {n_events} event{plural}:\n",
            first.job_type, first.emails
        ));
        for event in job_events.iter().take(MAX_EVENTS_LISTED) {
            body.push_str(&format!("  {}\n", describe(event)));
        }
        if n_events > MAX_EVENTS_LISTED {
            body.push_str(&format!(
                "  ... and {} more.\n",
                n_events - MAX_EVENTS_LISTED
            ));
        }
    }
    body.push_str(&format!(
        "\nYou get this mail because you maintain the tool '{tool}' and its jobs ask for it.\n\
         Change that with the job's --emails option: none, all, onfinish or onfailure.\n"
    ));
    Draft {
        tool: tool.to_owned(),
        subject,
        body,
        event_ids: events.iter().map(|event| event.id).collect(),
    }
}

/// One line about one event: when, which run, what happened.
fn describe(event: &MailEvent) -> String {
    let at = event
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| event.at.unix_timestamp().to_string());
    let run = if event.job_type == "continuous" {
        format!("replica {}", event.replica)
    } else {
        "the run".to_owned()
    };
    if event.event == "started" {
        return format!("{at}: {run} started.");
    }
    let outcome = event.outcome.as_deref().unwrap_or("ended");
    let mut line = format!("{at}: {run} ended: {outcome}");
    if let Some(code) = event.exit_code {
        line.push_str(&format!(", exit code {code}"));
    }
    if let Some(signal) = event.signal {
        line.push_str(&format!(", signal {signal}"));
    }
    if let Some(message) = &event.message {
        line.push_str(&format!(" ({message})"));
    }
    line.push('.');
    line
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use time::macros::datetime;

    use super::*;

    fn event(id: i64, tool: &str, job: &str, kind: &str, outcome: Option<&str>) -> MailEvent {
        MailEvent {
            id,
            tool: tool.to_owned(),
            job: job.to_owned(),
            job_type: if job == "crash" {
                "continuous"
            } else {
                "one-off"
            }
            .to_owned(),
            emails: "all".to_owned(),
            replica: 0,
            event: kind.to_owned(),
            outcome: outcome.map(str::to_owned),
            exit_code: outcome.map(|outcome| i32::from(outcome != "succeeded")),
            signal: None,
            message: None,
            at: datetime!(2026-01-01 12:00 UTC) + time::Duration::seconds(id),
        }
    }

    #[track_caller]
    fn check(events: &[MailEvent], expect: Expect) {
        let text: String = compose(events)
            .iter()
            .map(|draft| {
                format!(
                    "To the maintainers of {} (events {:?})\nSubject: {}\n\n{}---\n",
                    draft.tool, draft.event_ids, draft.subject, draft.body
                )
            })
            .collect();
        expect.assert_eq(&text);
    }

    #[test]
    fn each_setting_mails_what_the_original_mails() {
        let table: Vec<String> = ["none", "all", "onfinish", "onfailure"]
            .iter()
            .map(|emails| {
                let cases = [
                    ("started", None),
                    ("ended", Some("succeeded")),
                    ("ended", Some("failed")),
                    ("ended", Some("oom")),
                ];
                let mailed: Vec<String> = cases
                    .iter()
                    .filter(|(event, outcome)| wanted(emails, event, *outcome))
                    .map(|(event, outcome)| format!("{event} {}", outcome.unwrap_or("")))
                    .collect();
                format!("{emails}: {}", mailed.join(", "))
            })
            .collect();
        expect![[r#"
            none: 
            all: started , ended succeeded, ended failed, ended oom
            onfinish: ended succeeded, ended failed, ended oom
            onfailure: ended failed, ended oom"#]]
        .assert_eq(&table.join("\n"));
    }

    #[test]
    fn events_are_batched_into_one_mail_per_tool() {
        check(
            &[
                event(1, "mytool", "build", "started", None),
                event(2, "other", "hello", "ended", Some("succeeded")),
                event(3, "mytool", "build", "ended", Some("failed")),
                event(4, "mytool", "crash", "ended", Some("failed")),
            ],
            expect![[r#"
                To the maintainers of mytool (events [1, 3, 4])
                Subject: [Toolforge] [mytool] notification about 2 jobs

                This is the Toolforge jobs framework, with news about the jobs of the tool 'mytool'.

                Job 'build' (one-off) (emails: all) had 2 events:
                  2026-01-01T12:00:01Z: the run started.
                  2026-01-01T12:00:03Z: the run ended: failed, exit code 1.

                Job 'crash' (continuous) (emails: all) had 1 event:
                  2026-01-01T12:00:04Z: replica 0 ended: failed, exit code 1.

                You get this mail because you maintain the tool 'mytool' and its jobs ask for it.
                Change that with the job's --emails option: none, all, onfinish or onfailure.
                ---
                To the maintainers of other (events [2])
                Subject: [Toolforge] [other] notification about job hello

                This is the Toolforge jobs framework, with news about the jobs of the tool 'other'.

                Job 'hello' (one-off) (emails: all) had 1 event:
                  2026-01-01T12:00:02Z: the run ended: succeeded, exit code 0.

                You get this mail because you maintain the tool 'other' and its jobs ask for it.
                Change that with the job's --emails option: none, all, onfinish or onfailure.
                ---
            "#]],
        );
    }

    #[test]
    fn a_crash_loop_is_summed_up_after_ten_events() {
        let events: Vec<MailEvent> = (1..=12)
            .map(|id| event(id, "mytool", "crash", "ended", Some("failed")))
            .collect();
        let drafts = compose(&events);
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].event_ids.len(), 12);
        assert!(
            drafts[0].body.contains("had 12 events:"),
            "{}",
            drafts[0].body
        );
        assert!(
            drafts[0].body.contains("  ... and 2 more.\n"),
            "{}",
            drafts[0].body
        );
        assert_eq!(drafts[0].body.matches("replica 0 ended").count(), 10);
    }
}
