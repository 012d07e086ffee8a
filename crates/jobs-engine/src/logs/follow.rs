//! Following a job's log: its stored lines, then every line written after them, each
//! exactly once and in `seq` order.
//!
//! Invariants:
//! - The follower subscribes before it reads the stored lines and remembers the tool's
//!   horizon (the last `seq` completely written) it read them up to; live lines at or
//!   below its cursor are skipped, so a line written in between is sent once.
//! - Lines are broadcast in `seq` order (under the write lock), so a live line above the
//!   cursor is always the next one.
//! - When the follower falls behind the broadcast channel (lag), the missed lines are
//!   read back from the stored files by `seq` instead of being dropped; only lines that
//!   retention already removed, or that could not be stored, are missing then.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::logs::{LogLine, Logs};

/// A job's followed log: [`Follower::next`] yields the stored lines, then live ones.
#[derive(Debug)]
pub struct Follower {
    logs: Arc<Logs>,
    tool: String,
    job: String,
    receiver: broadcast::Receiver<LogLine>,
    /// Lines read from the files, waiting to be yielded.
    pending: VecDeque<LogLine>,
    /// Every line of the job at or below this `seq` has been yielded (or was left out
    /// of the requested tail); later live lines at or below it are duplicates.
    cursor: u64,
}

impl Logs {
    /// Follows a job: the last `limit` stored lines (all when `None`), then every line
    /// written after them, each once, none lost when the follower falls behind.
    pub fn follow_from(self: &Arc<Self>, tool: &str, job: &str, limit: Option<usize>) -> Follower {
        self.follow_from_with(tool, job, limit, || {})
    }

    /// [`Logs::follow_from`], running `between` after subscribing and before reading the
    /// stored lines (where tests write the lines that would be sent twice).
    pub(super) fn follow_from_with(
        self: &Arc<Self>,
        tool: &str,
        job: &str,
        limit: Option<usize>,
        between: impl FnOnce(),
    ) -> Follower {
        // Subscribe first: every line above the horizon read next is broadcast to us.
        let receiver = self.follow(tool, job);
        between();
        let (stored, horizon) = self.tail_with_horizon(tool, job, limit);
        Follower {
            logs: self.clone(),
            tool: tool.to_owned(),
            job: job.to_owned(),
            receiver,
            pending: stored.into(),
            cursor: horizon,
        }
    }
}

impl Follower {
    /// The next line, or `None` when the log store is gone.
    pub async fn next(&mut self) -> Option<LogLine> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            match self.receiver.recv().await {
                Ok(line) if line.seq <= self.cursor => {}
                Ok(line) => {
                    self.cursor = line.seq;
                    return Some(line);
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(tool = %self.tool, job = %self.job, missed, "a log follower fell behind; reading the missed lines back");
                    self.catch_up().await;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the lines above the cursor back from the files, up to the horizon.
    async fn catch_up(&mut self) {
        let logs = self.logs.clone();
        let (tool, job, after) = (self.tool.clone(), self.job.clone(), self.cursor);
        let read = tokio::task::spawn_blocking(move || logs.lines_after(&tool, &job, after)).await;
        match read {
            Ok((lines, horizon)) => {
                self.pending.extend(lines);
                self.cursor = self.cursor.max(horizon);
            }
            Err(err) => {
                tracing::warn!(tool = %self.tool, job = %self.job, error = %err, "could not read missed log lines back");
            }
        }
    }
}
