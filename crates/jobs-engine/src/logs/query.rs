//! Reading a tool's log across its jobs: filtered by job, time and text, newest or
//! oldest first, one page at a time.
//!
//! A page is positioned by the `seq` of the last line the previous page returned, so the
//! next page continues exactly after it; `seq` grows with every line written, so lines
//! appended meanwhile only ever land after the newest position and never shift a page.
//! Lines newer than the tool's write horizon (being written right now) are left for the
//! next read. The cost is one pass over the tool's files (bounded by its retention),
//! keeping at most `limit + 1` lines in memory.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::logs::{LogLine, Logs, list_files, parse_file_name, read_lines};

/// Which end of the log a page starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// The most recent lines first.
    #[default]
    NewestFirst,
    /// The oldest lines first.
    OldestFirst,
}

/// What to read from a tool's log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this job's lines (a valid job name; others are not looked up).
    pub job: Option<String>,
    /// Only lines written at or after this time (nanoseconds since the epoch).
    pub since: Option<u64>,
    /// Only lines written before this time (nanoseconds since the epoch).
    pub until: Option<u64>,
    /// Only lines whose message contains this text.
    pub contains: Option<String>,
    /// The order of the page.
    pub order: Order,
    /// At most this many lines.
    pub limit: usize,
    /// Continue after the line with this `seq` (the cursor of the previous page).
    pub after: Option<u64>,
}

/// One page of a tool's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    /// The lines, in the query's order.
    pub lines: Vec<LogLine>,
    /// Whether more lines matched than the page holds.
    pub more: bool,
}

impl LogQuery {
    fn matches(&self, line: &LogLine, horizon: u64) -> bool {
        let seq = line.seq;
        seq <= horizon
            && self.since.is_none_or(|since| seq >= since)
            && self.until.is_none_or(|until| seq < until)
            && self.after.is_none_or(|after| match self.order {
                Order::NewestFirst => seq < after,
                Order::OldestFirst => seq > after,
            })
            && self
                .contains
                .as_deref()
                .is_none_or(|text| line.message.contains(text))
    }

    /// Smaller ranks come first in the page.
    fn rank(&self, line: &LogLine) -> u64 {
        match self.order {
            Order::OldestFirst => line.seq,
            Order::NewestFirst => u64::MAX - line.seq,
        }
    }
}

/// A line with its rank; the heap keeps the `limit + 1` smallest ranks.
struct Ranked(u64, LogLine);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl Logs {
    /// One page of `tool`'s log (blocking file IO: call it from `spawn_blocking`).
    pub fn query(&self, tool: &str, query: &LogQuery) -> LogPage {
        let horizon = self.horizon(tool);
        let keep = query.limit.saturating_add(1);
        let mut best: BinaryHeap<Ranked> = BinaryHeap::new();
        for (name, path) in list_files(&self.tool_dir(tool)) {
            let Some((job, _)) = parse_file_name(&name) else {
                continue;
            };
            if query.job.as_deref().is_some_and(|wanted| wanted != job) {
                continue;
            }
            for line in read_lines(&path) {
                if !query.matches(&line, horizon) {
                    continue;
                }
                let rank = query.rank(&line);
                if best.len() == keep {
                    if best.peek().is_some_and(|worst| worst.0 <= rank) {
                        continue;
                    }
                    best.pop();
                }
                best.push(Ranked(rank, line));
            }
        }
        let mut lines: Vec<LogLine> = best
            .into_sorted_vec()
            .into_iter()
            .map(|ranked| ranked.1)
            .collect();
        let more = lines.len() > query.limit;
        lines.truncate(query.limit);
        LogPage { lines, more }
    }
}
