//! The scheduler's pure core: which scheduled job to start, skip or kill, and when.
//!
//! No IO, no tasks and no clock: the caller owns one timer, sleeps until [`Scheduler::next_wakeup`],
//! calls [`Scheduler::tick`] with the current time and carries out the returned [`Action`]s,
//! then reports each run's end with [`Scheduler::run_finished`].
//!
//! The semantics are the original's (a Kubernetes CronJob made by jobs-api, reference §1.5/§1.6):
//!
//! - Runs fire at the schedule's `schedule_actual`, in UTC.
//! - Concurrency is forbidden: a firing while a run (including its retries) is still going is
//!   skipped and reported as [`SkipReason::Overlap`].
//! - A firing handled more than [`STARTING_DEADLINE`] late (the daemon was down, or the tick came
//!   late) is skipped and reported as [`SkipReason::Missed`]; when several firings were missed,
//!   one [`Action::Skipped`] names the earliest and a firing still within the deadline starts.
//! - `retry` N: a failed run is started again, up to N more attempts, right after the failure is
//!   reported. Kubernetes waits 10 s, 20 s, ... between attempts; this core leaves pacing to
//!   the caller's tick.
//! - `timeout`: a deadline for the whole run, retries included (Kubernetes'
//!   `activeDeadlineSeconds`); past it the run gets [`Action::Kill`] and is not retried.
//! - [`Scheduler::run_now`] (the API's restart of a scheduled job): starts a run now; a run still
//!   going is killed first and the new one starts once its end is reported.
//!
//! Architecture Invariant: every pending instant (next firing, deadline, retry or manual start)
//! lives in one ordered set, so a tick costs O(log n) per due item and nothing per idle job;
//! 5,000 schedules cost 5,000 set entries.

use std::collections::{BTreeSet, HashMap};

use time::{Duration, OffsetDateTime};

use crate::schedule::Schedule;

/// How late a firing may start; later ones are skipped (the CronJob's `startingDeadlineSeconds`).
pub const STARTING_DEADLINE: Duration = Duration::seconds(30);

/// A scheduled job: its tool and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// The tool's name.
    pub tool: String,
    /// The job's name.
    pub job: String,
}

/// What the scheduler needs to know about a scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// When it runs.
    pub schedule: Schedule,
    /// How many times a failed run is started again (the API's `retry`, 0..=5).
    pub retry: u32,
    /// How long a run may take, retries included (the API's `timeout`); `None` or zero: no limit.
    pub timeout: Option<Duration>,
}

/// What the caller must do (or record) after a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start attempt `attempt` (1 for the first) of a run.
    Start {
        /// The job.
        key: JobKey,
        /// 1 for a run's first attempt, 2 for its first retry, and so on.
        attempt: u32,
        /// Why this attempt starts.
        trigger: Trigger,
        /// When the run will be killed if it is still going (from the run's first attempt).
        deadline: Option<OffsetDateTime>,
    },
    /// Stop the run in progress.
    Kill {
        /// The job.
        key: JobKey,
        /// The attempt that is running.
        attempt: u32,
        /// Why it is stopped.
        reason: KillReason,
    },
    /// A firing that did not start a run.
    Skipped {
        /// The job.
        key: JobKey,
        /// The firing time that was skipped.
        due: OffsetDateTime,
        /// Why it was skipped.
        reason: SkipReason,
    },
}

/// Why a run's attempt starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule fired at `due`.
    Schedule {
        /// The firing time.
        due: OffsetDateTime,
    },
    /// The previous attempt failed and retries are left.
    Retry,
    /// [`Scheduler::run_now`].
    RunNow,
}

/// Why a run is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// It passed its `timeout`.
    Timeout,
    /// [`Scheduler::run_now`] asked for a fresh run.
    RunNow,
    /// The job was removed.
    Removed,
}

/// Why a firing did not start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// It was handled more than [`STARTING_DEADLINE`] after its time.
    Missed,
    /// The previous run was still going (concurrency is forbidden).
    Overlap,
}

/// How a run's attempt ended, as the caller observed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Exit code 0.
    Succeeded,
    /// A non-zero exit, or the attempt could not run.
    Failed,
    /// It was stopped by a kill: after [`Action::Kill`], or by a runtime that enforces the
    /// deadline itself. A killed run is never retried.
    Killed,
}

/// A request about a job the scheduler does not have, or does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No scheduled job has this key.
    #[error("no scheduled job {}/{}", key.tool, key.job)]
    UnknownJob {
        /// The key asked for.
        key: JobKey,
    },
    /// The job has no run in progress.
    #[error("scheduled job {}/{} has no run in progress", key.tool, key.job)]
    NotRunning {
        /// The key asked for.
        key: JobKey,
    },
}

/// The scheduled jobs, their runs and the instants at which something is due.
#[derive(Debug, Default)]
pub struct Scheduler {
    jobs: HashMap<JobKey, JobState>,
    wakeups: Wakeups,
}

/// One job's state, as far as the scheduler is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The next firing of the schedule, if it fires again.
    pub next_due: Option<OffsetDateTime>,
    /// The attempt in progress, if a run is going.
    pub running_attempt: Option<u32>,
}

impl Scheduler {
    /// Adds a job, or replaces the schedule, retry and timeout of an existing one.
    ///
    /// The next firing is computed from `now`; a run in progress keeps going (with the deadline
    /// it started with).
    pub fn upsert(&mut self, key: JobKey, job: ScheduledJob, now: OffsetDateTime) {
        let next_due = job.schedule.next_after(now);
        let state = self.jobs.entry(key.clone()).or_insert_with(|| JobState {
            job: job.clone(),
            due: None,
            pending: None,
            run: None,
        });
        state.job = job;
        state.set_due(&mut self.wakeups, &key, next_due);
    }

    /// Removes a job; returns the kill for its run in progress, if any (deleting a CronJob
    /// deletes its running Job).
    pub fn remove(&mut self, key: &JobKey) -> Option<Action> {
        let mut state = self.jobs.remove(key)?;
        state.set_due(&mut self.wakeups, key, None);
        state.set_pending(&mut self.wakeups, key, None);
        let run = state.end_run(&mut self.wakeups, key)?;
        (!run.waiting_for_retry).then(|| Action::Kill {
            key: key.clone(),
            attempt: run.attempt,
            reason: KillReason::Removed,
        })
    }

    /// Asks for a run now (the API's restart of a scheduled job); the next
    /// [`Scheduler::tick`] starts it, after killing a run still going.
    pub fn run_now(&mut self, key: &JobKey, now: OffsetDateTime) -> Result<(), Error> {
        let state = self
            .jobs
            .get_mut(key)
            .ok_or_else(|| Error::UnknownJob { key: key.clone() })?;
        state.set_pending(&mut self.wakeups, key, Some((now, PendingKind::RunNow)));
        Ok(())
    }

    /// Records the end of the attempt in progress, at `now`.
    ///
    /// A failed attempt is retried (at the next tick) while retries are left, unless the run was
    /// killed, its deadline has passed or a run-now is waiting.
    pub fn run_finished(
        &mut self,
        key: &JobKey,
        outcome: RunOutcome,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let state = self
            .jobs
            .get_mut(key)
            .ok_or_else(|| Error::UnknownJob { key: key.clone() })?;
        let Some(run) = state.run.as_ref().filter(|run| !run.waiting_for_retry) else {
            return Err(Error::NotRunning { key: key.clone() });
        };
        let run_now_waiting = matches!(state.pending, Some((_, PendingKind::RunNow)));
        let may_retry = outcome == RunOutcome::Failed
            && !run.killed
            && !run_now_waiting
            && run.attempt <= state.job.retry
            && run.deadline.is_none_or(|deadline| now < deadline);
        if may_retry {
            if let Some(run) = state.run.as_mut() {
                run.waiting_for_retry = true;
            }
            state.set_pending(&mut self.wakeups, key, Some((now, PendingKind::Retry)));
        } else if state
            .end_run(&mut self.wakeups, key)
            .is_some_and(|run| run.restart_after)
        {
            state.set_pending(&mut self.wakeups, key, Some((now, PendingKind::RunNow)));
        }
        Ok(())
    }

    /// The earliest instant at which [`Scheduler::tick`] has something to do.
    pub fn next_wakeup(&self) -> Option<OffsetDateTime> {
        self.wakeups.0.first().map(|wakeup| wakeup.at)
    }

    /// Everything due at or before `now`, in time order.
    pub fn tick(&mut self, now: OffsetDateTime) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(wakeup) = self.wakeups.pop_due(now) {
            let Some(state) = self.jobs.get_mut(&wakeup.key) else {
                continue;
            };
            let key = &wakeup.key;
            match wakeup.kind {
                TimerKind::Pending => {
                    if let Some((_, kind)) = state.pending.take() {
                        state.start_pending(&mut self.wakeups, key, kind, now, &mut actions);
                    }
                }
                TimerKind::Deadline => {
                    state.deadline_passed(&mut self.wakeups, key, now, &mut actions)
                }
                TimerKind::Due => {
                    state.due = None;
                    state.fire(&mut self.wakeups, key, wakeup.at, now, &mut actions);
                }
            }
        }
        actions
    }

    /// The scheduler's view of one job, or `None` if it has no such job.
    pub fn status(&self, key: &JobKey) -> Option<JobStatus> {
        let state = self.jobs.get(key)?;
        Some(JobStatus {
            next_due: state.due,
            running_attempt: state
                .run
                .as_ref()
                .filter(|run| !run.waiting_for_retry)
                .map(|run| run.attempt),
        })
    }

    /// How many jobs are scheduled.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is scheduled.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[derive(Debug, Clone)]
struct JobState {
    job: ScheduledJob,
    /// The next firing; mirrored in the wakeup set.
    due: Option<OffsetDateTime>,
    /// A retry or manual start for the next tick; mirrored in the wakeup set.
    pending: Option<(OffsetDateTime, PendingKind)>,
    run: Option<Run>,
}

#[derive(Debug, Clone, Default)]
struct Run {
    attempt: u32,
    /// When the run is killed; mirrored in the wakeup set until it passes.
    deadline: Option<OffsetDateTime>,
    /// The previous attempt failed and the next one is pending.
    waiting_for_retry: bool,
    /// A kill was asked for; the run ends for good when its end is reported.
    killed: bool,
    /// Start a new run once this one's end is reported.
    restart_after: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingKind {
    Retry,
    RunNow,
}

impl JobState {
    fn set_due(&mut self, wakeups: &mut Wakeups, key: &JobKey, due: Option<OffsetDateTime>) {
        wakeups.replace(key, TimerKind::Due, self.due, due);
        self.due = due;
    }

    fn set_pending(
        &mut self,
        wakeups: &mut Wakeups,
        key: &JobKey,
        pending: Option<(OffsetDateTime, PendingKind)>,
    ) {
        let at = |pending: Option<(OffsetDateTime, PendingKind)>| pending.map(|(at, _)| at);
        wakeups.replace(key, TimerKind::Pending, at(self.pending), at(pending));
        self.pending = pending;
    }

    /// Starts attempt 1 of a run at `now`.
    fn start_run(
        &mut self,
        wakeups: &mut Wakeups,
        key: &JobKey,
        trigger: Trigger,
        now: OffsetDateTime,
        actions: &mut Vec<Action>,
    ) {
        let deadline = self
            .job
            .timeout
            .filter(|timeout| timeout.is_positive())
            .map(|timeout| now + timeout);
        wakeups.replace(key, TimerKind::Deadline, None, deadline);
        self.run = Some(Run {
            attempt: 1,
            deadline,
            ..Run::default()
        });
        actions.push(Action::Start {
            key: key.clone(),
            attempt: 1,
            trigger,
            deadline,
        });
    }

    /// Forgets the run (and its deadline), returning it.
    fn end_run(&mut self, wakeups: &mut Wakeups, key: &JobKey) -> Option<Run> {
        let run = self.run.take()?;
        wakeups.replace(key, TimerKind::Deadline, run.deadline, None);
        Some(run)
    }

    /// The schedule's firing at `due`, handled at `now`.
    fn fire(
        &mut self,
        wakeups: &mut Wakeups,
        key: &JobKey,
        due: OffsetDateTime,
        now: OffsetDateTime,
        actions: &mut Vec<Action>,
    ) {
        let mut due = Some(due);
        if let Some(missed) = due.filter(|due| now - *due > STARTING_DEADLINE) {
            actions.push(Action::Skipped {
                key: key.clone(),
                due: missed,
                reason: SkipReason::Missed,
            });
            // The first firing at or after `now - STARTING_DEADLINE` may still start.
            let window_start = now - STARTING_DEADLINE - Duration::NANOSECOND;
            due = self
                .job
                .schedule
                .next_after(window_start)
                .filter(|next| *next > missed);
        }
        let next_due = match due {
            Some(due) if due <= now => {
                if self.run.is_some() {
                    actions.push(Action::Skipped {
                        key: key.clone(),
                        due,
                        reason: SkipReason::Overlap,
                    });
                } else {
                    self.start_run(wakeups, key, Trigger::Schedule { due }, now, actions);
                }
                self.job.schedule.next_after(due)
            }
            later => later,
        };
        self.set_due(wakeups, key, next_due);
    }

    fn start_pending(
        &mut self,
        wakeups: &mut Wakeups,
        key: &JobKey,
        kind: PendingKind,
        now: OffsetDateTime,
        actions: &mut Vec<Action>,
    ) {
        let Some(run) = self.run.as_mut() else {
            if kind == PendingKind::RunNow {
                self.start_run(wakeups, key, Trigger::RunNow, now, actions);
            }
            return;
        };
        match kind {
            PendingKind::Retry if run.waiting_for_retry => {
                run.waiting_for_retry = false;
                run.attempt += 1;
                actions.push(Action::Start {
                    key: key.clone(),
                    attempt: run.attempt,
                    trigger: Trigger::Retry,
                    deadline: run.deadline,
                });
            }
            PendingKind::Retry => {}
            PendingKind::RunNow if run.waiting_for_retry => {
                // Nothing runs between attempts: drop the retry and start afresh.
                self.end_run(wakeups, key);
                self.start_run(wakeups, key, Trigger::RunNow, now, actions);
            }
            PendingKind::RunNow => {
                run.restart_after = true;
                if !run.killed {
                    run.killed = true;
                    actions.push(Action::Kill {
                        key: key.clone(),
                        attempt: run.attempt,
                        reason: KillReason::RunNow,
                    });
                }
            }
        }
    }

    fn deadline_passed(
        &mut self,
        wakeups: &mut Wakeups,
        key: &JobKey,
        now: OffsetDateTime,
        actions: &mut Vec<Action>,
    ) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        // The set no longer holds it.
        run.deadline = None;
        if run.waiting_for_retry {
            // Out of time between attempts: the run ends failed and nothing is left to kill.
            let restart = run.restart_after;
            self.end_run(wakeups, key);
            self.set_pending(wakeups, key, None);
            if restart {
                self.start_run(wakeups, key, Trigger::RunNow, now, actions);
            }
        } else if !run.killed {
            run.killed = true;
            actions.push(Action::Kill {
                key: key.clone(),
                attempt: run.attempt,
                reason: KillReason::Timeout,
            });
        }
    }
}

/// Every pending instant of every job, ordered by time.
#[derive(Debug, Default)]
struct Wakeups(BTreeSet<Wakeup>);

/// One pending instant; ordered by time, then kind, then job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Wakeup {
    at: OffsetDateTime,
    kind: TimerKind,
    key: JobKey,
}

/// At one instant, retries and manual starts go first, then kills, then firings (which then
/// see whether the run is still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Pending,
    Deadline,
    Due,
}

impl Wakeups {
    /// Moves a job's timer of `kind` from `old` to `new`.
    fn replace(
        &mut self,
        key: &JobKey,
        kind: TimerKind,
        old: Option<OffsetDateTime>,
        new: Option<OffsetDateTime>,
    ) {
        if old == new {
            return;
        }
        if let Some(at) = old {
            self.0.remove(&Wakeup {
                at,
                kind,
                key: key.clone(),
            });
        }
        if let Some(at) = new {
            self.0.insert(Wakeup {
                at,
                kind,
                key: key.clone(),
            });
        }
    }

    /// Takes the earliest wakeup if it is due at `now`.
    fn pop_due(&mut self, now: OffsetDateTime) -> Option<Wakeup> {
        if self.0.first()?.at > now {
            return None;
        }
        self.0.pop_first()
    }
}
