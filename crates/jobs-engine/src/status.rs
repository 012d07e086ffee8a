//! A job's status in the original's words: `status_short` (`Running`, `Completed`,
//! `Failed`, `Waiting for scheduled time`, …) and the `status_long` sentence, plus the
//! richer fields the v2 status carries.

use jobs::spec::{JobKind, JobSpec};
use store::RunRecord;
use time::OffsetDateTime;

/// What the engine knows about a job right now.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// Replicas running, with their start times.
    pub running: Vec<(u32, OffsetDateTime)>,
    /// Restarts made by the supervisor since the job was (re)defined.
    pub restarts: u32,
    /// Why the last start failed, if it did.
    pub start_error: Option<String>,
}

/// The status of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The original's short status.
    pub short: String,
    /// The original's sentence.
    pub long: String,
    /// Extra notes: `restarted (N)`, `exitcode X`.
    pub messages: Vec<String>,
    /// How long the current run has been going, in seconds.
    pub duration: Option<i64>,
    /// When the last run started (RFC 3339).
    pub last_run: Option<String>,
}

/// Builds the status from the definition, the live state and the latest runs (newest first).
pub fn job_status(
    spec: &JobSpec,
    live: &LiveState,
    runs: &[RunRecord],
    now: OffsetDateTime,
) -> JobStatus {
    let last = runs.first();
    let last_run = last.map(|run| rfc3339(run.started_at));
    let mut messages = Vec::new();
    if live.restarts > 0 {
        messages.push(format!("restarted ({})", live.restarts));
    }
    if let Some(code) = runs
        .iter()
        .find_map(|run| run.exit_code.filter(|_| run.ended_at.is_some()))
    {
        messages.push(format!("exitcode {code}"));
    }
    let running_since = live.running.iter().map(|(_, at)| *at).min();
    let duration = running_since.map(|since| (now - since).whole_seconds().max(0));
    let (short, long) = if let Some(error) = &live.start_error {
        (
            "Unable to start".to_owned(),
            format!("The job could not be started: {error}"),
        )
    } else {
        match &spec.kind {
            JobKind::OneOff => match (running_since, last) {
                (Some(since), _) => (
                    format!(
                        "Running for {}",
                        human_duration((now - since).whole_seconds())
                    ),
                    format!("Running since {}.", rfc3339(since)),
                ),
                (None, Some(run)) if run.ended_at.is_some() => ended(run),
                (None, Some(_)) => ("Starting".to_owned(), "The job is starting.".to_owned()),
                (None, None) => (
                    "Not running".to_owned(),
                    "The job has not run yet.".to_owned(),
                ),
            },
            JobKind::Scheduled {
                schedule_actual, ..
            } => match (running_since, last) {
                (Some(since), _) => (
                    format!(
                        "Running for {}",
                        human_duration((now - since).whole_seconds())
                    ),
                    format!(
                        "Scheduled run in progress since {}. Schedule: {schedule_actual} (UTC).",
                        rfc3339(since)
                    ),
                ),
                (None, Some(run)) => (
                    format!("Last schedule time: {}", rfc3339(run.started_at)),
                    format!(
                        "Last run at {} {}. Schedule: {schedule_actual} (UTC).",
                        rfc3339(run.started_at),
                        run.outcome
                            .as_deref()
                            .map(outcome_words)
                            .unwrap_or("is still settling")
                    ),
                ),
                (None, None) => (
                    "Waiting for scheduled time".to_owned(),
                    format!("The job has not run yet. Schedule: {schedule_actual} (UTC)."),
                ),
            },
            JobKind::Continuous { replicas, .. } => {
                let up = live.running.len() as u32;
                if up >= *replicas && up > 0 {
                    (
                        "Running".to_owned(),
                        format!(
                            "{up} of {replicas} replicas running since {}.",
                            running_since.map(rfc3339).unwrap_or_default()
                        ),
                    )
                } else if live.restarts >= 3 {
                    (
                        "Specified command fails to run".to_owned(),
                        format!(
                            "{up} of {replicas} replicas running; the command keeps exiting and is restarted with increasing delays ({} restarts).",
                            live.restarts
                        ),
                    )
                } else if up > 0 {
                    (
                        "Running".to_owned(),
                        format!("{up} of {replicas} replicas running; the others are restarting."),
                    )
                } else {
                    (
                        "Not running".to_owned(),
                        format!("0 of {replicas} replicas running; restarting."),
                    )
                }
            }
        }
    };
    JobStatus {
        short,
        long,
        messages,
        duration,
        last_run,
    }
}

fn ended(run: &RunRecord) -> (String, String) {
    let outcome = run.outcome.as_deref().unwrap_or("failed");
    let at = run.ended_at.map(rfc3339).unwrap_or_default();
    let short = if outcome == "succeeded" {
        "Completed"
    } else {
        "Failed"
    };
    let detail = match (run.exit_code, run.signal, run.message.as_deref()) {
        (_, _, Some(message)) => format!(" {message}."),
        (Some(code), _, _) => format!(" Exit code {code}."),
        (_, Some(signal), _) => format!(" Killed by signal {signal}."),
        _ => String::new(),
    };
    (
        short.to_owned(),
        format!(
            "Last run ended at {at}: {}.{detail}",
            outcome_words(outcome)
        ),
    )
}

fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "succeeded" => "succeeded",
        "oom" => "ran out of memory",
        "killed" => "was killed",
        "timeout" => "timed out",
        "interrupted" => "was interrupted by a platform restart",
        "skipped" => "was skipped",
        "start-failed" => "could not start",
        "stopped" => "was stopped",
        _ => "failed",
    }
}

/// `3s`, `2m 5s`, `1h 2m`, `2d 3h`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// RFC 3339 in UTC with seconds, e.g. `2025-06-19T12:00:00Z`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_originals() {
        assert_eq!(human_duration(3), "3s");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(3720), "1h 2m");
        assert_eq!(human_duration(2 * 86400 + 3 * 3600), "2d 3h");
    }
}
