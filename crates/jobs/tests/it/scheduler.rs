//! `jobs::scheduler`: the scheduler's core driven by a simulated clock (no sleeping).
//!
//! [`Sim`] plays the caller: it jumps to the next instant at which the scheduler or a run has
//! something to do, reports runs that ended, ticks, and starts or kills runs as told.

use std::collections::BTreeMap;

use jobs::schedule::Schedule;
use jobs::scheduler::{
    Action, JobKey, KillReason, RunOutcome, STARTING_DEADLINE, ScheduledJob, Scheduler, SkipReason,
    Trigger,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// How the simulated runtime runs a started attempt: how long, and how it ends.
trait Runtime: FnMut(&JobKey, u32) -> (Duration, RunOutcome) {}
impl<F: FnMut(&JobKey, u32) -> (Duration, RunOutcome)> Runtime for F {}

struct Sim {
    scheduler: Scheduler,
    now: OffsetDateTime,
    /// Runs in progress, by the time they end on their own.
    ends: BTreeMap<OffsetDateTime, Vec<(JobKey, RunOutcome)>>,
    /// Every action with the time it was returned.
    log: Vec<(OffsetDateTime, Action)>,
}

impl Sim {
    fn new(now: OffsetDateTime) -> Sim {
        Sim {
            scheduler: Scheduler::default(),
            now,
            ends: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn add(
        &mut self,
        tool: &str,
        job: &str,
        schedule: &str,
        retry: u32,
        timeout: Option<i64>,
    ) -> JobKey {
        let key = key(tool, job);
        let job = ScheduledJob {
            schedule: Schedule::parse(tool, job, schedule).unwrap(),
            retry,
            timeout: timeout.map(Duration::seconds),
        };
        self.scheduler.upsert(key.clone(), job, self.now);
        key
    }

    /// Runs the world until `end` (inclusive).
    fn run_until(&mut self, end: OffsetDateTime, runtime: &mut impl Runtime) {
        loop {
            let next_end = self.ends.keys().next().copied();
            let next = match (self.scheduler.next_wakeup(), next_end) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(next) => next,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = next;
            self.report_ends();
            self.tick(runtime);
        }
        self.now = end;
    }

    fn report_ends(&mut self) {
        while let Some(entry) = self
            .ends
            .first_entry()
            .filter(|entry| *entry.key() <= self.now)
        {
            for (key, outcome) in entry.remove() {
                self.scheduler
                    .run_finished(&key, outcome, self.now)
                    .unwrap();
            }
        }
    }

    /// One tick at `self.now`, carrying out the actions.
    fn tick(&mut self, runtime: &mut impl Runtime) {
        for action in self.scheduler.tick(self.now) {
            match &action {
                Action::Start { key, attempt, .. } => {
                    let (duration, outcome) = runtime(key, *attempt);
                    self.ends
                        .entry(self.now + duration)
                        .or_default()
                        .push((key.clone(), outcome));
                }
                Action::Kill { key, .. } => {
                    for runs in self.ends.values_mut() {
                        runs.retain(|(running, _)| running != key);
                    }
                    self.ends
                        .entry(self.now)
                        .or_default()
                        .push((key.clone(), RunOutcome::Killed));
                }
                Action::Skipped { .. } => {}
            }
            self.log.push((self.now, action));
        }
    }

    fn starts(&self) -> Vec<(OffsetDateTime, u32, Trigger)> {
        self.log
            .iter()
            .filter_map(|(at, action)| match action {
                Action::Start {
                    attempt, trigger, ..
                } => Some((*at, *attempt, *trigger)),
                _ => None,
            })
            .collect()
    }
}

fn key(tool: &str, job: &str) -> JobKey {
    JobKey {
        tool: tool.to_owned(),
        job: job.to_owned(),
    }
}

fn succeed_after(seconds: i64) -> impl FnMut(&JobKey, u32) -> (Duration, RunOutcome) {
    move |_, _| (Duration::seconds(seconds), RunOutcome::Succeeded)
}

const T0: OffsetDateTime = datetime!(2026-11-29 12:00 UTC);

#[test]
fn every_minute_fires_60_times_in_an_hour_each_on_the_minute() {
    let mut sim = Sim::new(T0);
    sim.add("tool", "minutely", "* * * * *", 0, None);
    sim.run_until(T0 + Duration::HOUR, &mut succeed_after(10));
    let expected: Vec<_> = (1..=60)
        .map(|minute| {
            let due = T0 + Duration::minutes(minute);
            (due, 1, Trigger::Schedule { due })
        })
        .collect();
    assert_eq!(sim.starts(), expected);
    assert!(
        sim.log
            .iter()
            .all(|(_, action)| matches!(action, Action::Start { .. }))
    );
}

#[test]
fn daily_fires_once_a_day_at_its_schedule_actual() {
    let mut sim = Sim::new(T0);
    let key = sim.add("mytool", "nightly", "@daily", 0, None);
    sim.run_until(T0 + Duration::days(3), &mut succeed_after(60));
    // random.seed("mytool nightly") draws minute 45, hour 17.
    let expected: Vec<_> = [
        datetime!(2026-11-29 17:45 UTC),
        datetime!(2026-11-30 17:45 UTC),
        datetime!(2026-12-01 17:45 UTC),
    ]
    .into_iter()
    .map(|due| (due, 1, Trigger::Schedule { due }))
    .collect();
    assert_eq!(sim.starts(), expected);
    let status = sim.scheduler.status(&key).unwrap();
    assert_eq!(status.next_due, Some(datetime!(2026-12-02 17:45 UTC)));
    assert_eq!(status.running_attempt, None);
}

#[test]
fn a_run_still_going_at_the_next_firing_is_not_doubled_and_the_firing_is_recorded_as_skipped() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "slow", "* * * * *", 0, None);
    // Each run takes 90 s: the firing a minute after a start finds it still going.
    sim.run_until(T0 + Duration::minutes(6), &mut succeed_after(90));
    let minute = |n: i64| T0 + Duration::minutes(n);
    let expected = vec![
        (
            minute(1),
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due: minute(1) },
                deadline: None,
            },
        ),
        (
            minute(2),
            Action::Skipped {
                key: key.clone(),
                due: minute(2),
                reason: SkipReason::Overlap,
            },
        ),
        (
            minute(3),
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due: minute(3) },
                deadline: None,
            },
        ),
        (
            minute(4),
            Action::Skipped {
                key: key.clone(),
                due: minute(4),
                reason: SkipReason::Overlap,
            },
        ),
        (
            minute(5),
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due: minute(5) },
                deadline: None,
            },
        ),
        (
            minute(6),
            Action::Skipped {
                key: key.clone(),
                due: minute(6),
                reason: SkipReason::Overlap,
            },
        ),
    ];
    assert_eq!(sim.log, expected);
}

#[test]
fn a_firing_handled_more_than_30_seconds_late_is_skipped_as_missed() {
    let due = T0 + Duration::MINUTE;
    // (how late the tick comes, what it returns)
    let cases = [
        (Duration::ZERO, true),
        (Duration::seconds(29), true),
        (STARTING_DEADLINE, true),
        (Duration::seconds(31), false),
        (Duration::seconds(59), false),
    ];
    for (lateness, starts) in cases {
        let mut scheduler = Scheduler::default();
        let key = key("tool", "late");
        let schedule = Schedule::parse("tool", "late", "* * * * *").unwrap();
        scheduler.upsert(
            key.clone(),
            ScheduledJob {
                schedule,
                retry: 0,
                timeout: None,
            },
            T0,
        );
        assert_eq!(scheduler.next_wakeup(), Some(due));
        let expected = if starts {
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due },
                deadline: None,
            }
        } else {
            Action::Skipped {
                key: key.clone(),
                due,
                reason: SkipReason::Missed,
            }
        };
        assert_eq!(
            scheduler.tick(due + lateness),
            [expected],
            "{lateness} late"
        );
        assert_eq!(
            scheduler.next_wakeup(),
            Some(due + Duration::MINUTE),
            "{lateness} late"
        );
    }
}

#[test]
fn after_a_long_outage_one_skip_is_recorded_and_a_firing_still_within_30_seconds_starts() {
    let mut scheduler = Scheduler::default();
    let key = key("tool", "down");
    let schedule = Schedule::parse("tool", "down", "* * * * *").unwrap();
    scheduler.upsert(
        key.clone(),
        ScheduledJob {
            schedule,
            retry: 0,
            timeout: None,
        },
        T0,
    );
    let back = T0 + Duration::HOUR + Duration::seconds(10);
    let due = T0 + Duration::HOUR;
    assert_eq!(
        scheduler.tick(back),
        [
            Action::Skipped {
                key: key.clone(),
                due: T0 + Duration::MINUTE,
                reason: SkipReason::Missed
            },
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due },
                deadline: None
            },
        ]
    );
    assert_eq!(scheduler.next_wakeup(), Some(due + Duration::MINUTE));
}

#[test]
fn a_run_past_its_timeout_is_killed_and_not_retried() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "stuck", "0 * * * *", 3, Some(300));
    // The run never ends on its own.
    sim.run_until(T0 + Duration::minutes(90), &mut |_, _| {
        (Duration::days(7), RunOutcome::Succeeded)
    });
    let start = T0 + Duration::HOUR;
    let deadline = start + Duration::minutes(5);
    let expected = vec![
        (
            start,
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due: start },
                deadline: Some(deadline),
            },
        ),
        (
            deadline,
            Action::Kill {
                key: key.clone(),
                attempt: 1,
                reason: KillReason::Timeout,
            },
        ),
    ];
    assert_eq!(sim.log, expected);
    assert_eq!(sim.scheduler.status(&key).unwrap().running_attempt, None);
}

#[test]
fn a_failed_run_is_retried_up_to_its_retry_count_and_the_next_firing_starts_afresh() {
    // (retry, the attempt that succeeds, the attempts started per firing)
    let cases = [
        (0, None, vec![1]),
        (2, None, vec![1, 2, 3]),
        (2, Some(2), vec![1, 2]),
        (5, Some(1), vec![1]),
    ];
    for (retry, succeeds_at, expected_attempts) in cases {
        let mut sim = Sim::new(T0);
        sim.add("tool", "flaky", "*/10 * * * *", retry, None);
        // Firings at 12:10 and 12:20; each attempt takes 20 s.
        sim.run_until(T0 + Duration::minutes(25), &mut |_, attempt| {
            let outcome = if Some(attempt) == succeeds_at {
                RunOutcome::Succeeded
            } else {
                RunOutcome::Failed
            };
            (Duration::seconds(20), outcome)
        });
        let attempts: Vec<u32> = sim
            .starts()
            .iter()
            .map(|(_, attempt, _)| *attempt)
            .collect();
        let expected: Vec<u32> = expected_attempts
            .iter()
            .chain(&expected_attempts)
            .copied()
            .collect();
        assert_eq!(
            attempts, expected,
            "retry {retry}, succeeds at {succeeds_at:?}"
        );
        let retries_at: Vec<OffsetDateTime> = sim
            .starts()
            .iter()
            .filter(|(_, _, trigger)| *trigger == Trigger::Retry)
            .map(|(at, _, _)| *at)
            .collect();
        let first_retries = (1..expected_attempts.len() as i64)
            .map(|n| T0 + Duration::minutes(10) + Duration::seconds(20 * n));
        let second_retries = (1..expected_attempts.len() as i64)
            .map(|n| T0 + Duration::minutes(20) + Duration::seconds(20 * n));
        let expected_retries_at: Vec<OffsetDateTime> =
            first_retries.chain(second_retries).collect();
        assert_eq!(
            retries_at, expected_retries_at,
            "retry {retry}, succeeds at {succeeds_at:?}"
        );
    }
}

#[test]
fn retries_share_the_runs_timeout() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "slowfail", "0 * * * *", 5, Some(100));
    // Each attempt fails after 40 s: attempts at +0 s, +40 s, +80 s, and the kill at +100 s.
    sim.run_until(T0 + Duration::minutes(65), &mut |_, _| {
        (Duration::seconds(40), RunOutcome::Failed)
    });
    let start = T0 + Duration::HOUR;
    let deadline = Some(start + Duration::seconds(100));
    let expected = vec![
        (
            start,
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::Schedule { due: start },
                deadline,
            },
        ),
        (
            start + Duration::seconds(40),
            Action::Start {
                key: key.clone(),
                attempt: 2,
                trigger: Trigger::Retry,
                deadline,
            },
        ),
        (
            start + Duration::seconds(80),
            Action::Start {
                key: key.clone(),
                attempt: 3,
                trigger: Trigger::Retry,
                deadline,
            },
        ),
        (
            start + Duration::seconds(100),
            Action::Kill {
                key: key.clone(),
                attempt: 3,
                reason: KillReason::Timeout,
            },
        ),
    ];
    assert_eq!(sim.log, expected);
}

#[test]
fn run_now_starts_an_idle_job_at_once_and_restarts_a_running_one() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "manual", "@yearly", 0, None);
    let mut runtime = succeed_after(600);

    sim.scheduler.run_now(&key, sim.now).unwrap();
    sim.tick(&mut runtime);
    sim.run_until(T0 + Duration::minutes(1), &mut runtime);
    sim.scheduler.run_now(&key, sim.now).unwrap();
    sim.tick(&mut runtime);
    sim.run_until(T0 + Duration::minutes(2), &mut runtime);

    let restart_at = T0 + Duration::minutes(1);
    let expected = vec![
        (
            T0,
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::RunNow,
                deadline: None,
            },
        ),
        (
            restart_at,
            Action::Kill {
                key: key.clone(),
                attempt: 1,
                reason: KillReason::RunNow,
            },
        ),
        (
            restart_at,
            Action::Start {
                key: key.clone(),
                attempt: 1,
                trigger: Trigger::RunNow,
                deadline: None,
            },
        ),
    ];
    assert_eq!(sim.log, expected);
    assert_eq!(sim.scheduler.status(&key).unwrap().running_attempt, Some(1));
}

#[test]
fn removing_a_running_job_kills_its_run_and_forgets_it() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "gone", "* * * * *", 0, None);
    sim.run_until(T0 + Duration::minutes(1), &mut succeed_after(600));
    assert_eq!(
        sim.scheduler.remove(&key),
        Some(Action::Kill {
            key: key.clone(),
            attempt: 1,
            reason: KillReason::Removed
        })
    );
    assert_eq!(sim.scheduler.next_wakeup(), None);
    assert!(sim.scheduler.status(&key).is_none());
    assert!(sim.scheduler.run_now(&key, sim.now).is_err());
}

#[test]
fn updating_a_schedule_moves_the_next_firing() {
    let mut sim = Sim::new(T0);
    let key = sim.add("tool", "moved", "0 18 * * *", 0, None);
    assert_eq!(
        sim.scheduler.next_wakeup(),
        Some(datetime!(2026-11-29 18:00 UTC))
    );
    sim.add("tool", "moved", "30 13 * * *", 0, None);
    assert_eq!(
        sim.scheduler.next_wakeup(),
        Some(datetime!(2026-11-29 13:30 UTC))
    );
    assert_eq!(sim.scheduler.len(), 1);
    assert_eq!(
        sim.scheduler.status(&key).unwrap().next_due,
        Some(datetime!(2026-11-29 13:30 UTC))
    );
}

#[test]
fn five_thousand_hourly_schedules_each_start_once_an_hour() {
    let mut sim = Sim::new(T0);
    for job_idx in 0..5_000 {
        sim.add(
            &format!("tool{}", job_idx % 100),
            &format!("job{job_idx}"),
            "@hourly",
            0,
            None,
        );
    }
    sim.run_until(T0 + Duration::hours(2), &mut succeed_after(30));
    assert_eq!(sim.starts().len(), 10_000);
    assert!(sim.log.iter().all(|(at, action)| matches!(
        action,
        Action::Start { trigger: Trigger::Schedule { due }, .. } if due == at
    )));
}

#[test]
fn a_run_failing_while_a_run_now_waits_is_not_retried_and_the_fresh_run_starts() {
    let mut scheduler = Scheduler::default();
    let key = key("tool", "racy");
    let schedule = Schedule::parse("tool", "racy", "0 * * * *").unwrap();
    scheduler.upsert(
        key.clone(),
        ScheduledJob {
            schedule,
            retry: 3,
            timeout: None,
        },
        T0,
    );
    scheduler.run_now(&key, T0).unwrap();
    let fresh_start = Action::Start {
        key: key.clone(),
        attempt: 1,
        trigger: Trigger::RunNow,
        deadline: None,
    };
    assert_eq!(scheduler.tick(T0), std::slice::from_ref(&fresh_start));
    // Asked again; the run fails before the next tick sees the request.
    let later = T0 + Duration::seconds(5);
    scheduler.run_now(&key, later).unwrap();
    scheduler
        .run_finished(&key, RunOutcome::Failed, later)
        .unwrap();
    assert_eq!(scheduler.tick(later), [fresh_start]);
}

#[test]
fn reporting_the_end_of_a_run_that_is_not_going_is_an_error() {
    let mut scheduler = Scheduler::default();
    let idle = key("tool", "idle");
    let schedule = Schedule::parse("tool", "idle", "0 * * * *").unwrap();
    scheduler.upsert(
        idle.clone(),
        ScheduledJob {
            schedule,
            retry: 0,
            timeout: None,
        },
        T0,
    );
    let err = scheduler
        .run_finished(&idle, RunOutcome::Succeeded, T0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scheduled job tool/idle has no run in progress"
    );
    let err = scheduler
        .run_finished(&key("tool", "other"), RunOutcome::Succeeded, T0)
        .unwrap_err();
    assert_eq!(err.to_string(), "no scheduled job tool/other");
}
