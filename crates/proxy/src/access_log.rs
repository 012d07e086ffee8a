//! The access log: one JSON line per request under `<dir>/access.log`, rotated by size
//! to `access.log.1` … `access.log.<keep>`, and its summary for `toolforged admin web-stats`.
//!
//! The request path never waits for the disk: records go through a bounded channel to
//! one writer task; when the channel is full a record is dropped and counted, and the
//! count is logged once the writer catches up. The writer flushes after each batch and
//! then lets records gather for [`FLUSH_INTERVAL`] before the next one, so a line is on
//! disk shortly after its request ended and a busy proxy makes one write per interval,
//! not one per request.
//!
//! The line format is a file format (read back by [`summarize`]), so its type derives
//! `Serialize` here rather than in `api-types`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api_types::admin::{WebStats, WebStatsCount};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The current file's name.
pub const FILE_NAME: &str = "access.log";
/// Records waiting for the writer before new ones are dropped.
const CHANNEL_CAPACITY: usize = 65_536;
/// How long the writer lets records gather after a write: a busy proxy writes batches,
/// a quiet one still writes a line within this long.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
/// Most records written in one batch.
const BATCH: usize = 1024;
/// Rows in each top list of the summary.
const TOP: usize = 10;

/// One request, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// RFC 3339, when the request arrived.
    pub time: String,
    /// The tool the host named, if it named one.
    pub tool: Option<String>,
    pub host: String,
    pub method: String,
    /// Path and query as requested.
    pub path: String,
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Milliseconds from the request's arrival to the response's last byte.
    pub duration_ms: f64,
    /// The client's address (the TCP peer).
    pub client: String,
}

/// Size-based rotation.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// The current file is rotated once it grows past this many bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept (`access.log.1` is the newest).
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_file_bytes: 64 << 20,
            keep: 5,
        }
    }
}

/// The sending end: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct AccessLog {
    sender: mpsc::Sender<AccessRecord>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Creates `dir` and starts the writer task on `tracker`; it stops when `cancel`
    /// fires (after writing what is queued) or when every sender is gone.
    pub fn start(
        dir: &Path,
        rotation: Rotation,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> std::io::Result<AccessLog> {
        std::fs::create_dir_all(dir)?;
        let writer = Writer::open(dir.to_owned(), rotation)?;
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        tracker.spawn(write_loop(writer, receiver, dropped.clone(), cancel));
        Ok(AccessLog { sender, dropped })
    }

    /// Queues a record; drops (and counts) it when the writer is behind.
    pub fn record(&self, record: AccessRecord) {
        if self.sender.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Writer {
    dir: PathBuf,
    rotation: Rotation,
    file: std::io::BufWriter<std::fs::File>,
    size: u64,
}

impl Writer {
    fn open(dir: PathBuf, rotation: Rotation) -> std::io::Result<Writer> {
        let path = dir.join(FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            dir,
            rotation,
            file: std::io::BufWriter::with_capacity(64 << 10, file),
            size,
        })
    }

    fn write(&mut self, record: &AccessRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.rotation.max_file_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let name = |n: u32| self.dir.join(format!("{FILE_NAME}.{n}"));
        let _ = std::fs::remove_file(name(self.rotation.keep));
        for n in (1..self.rotation.keep).rev() {
            let from = name(n);
            if from.exists() {
                std::fs::rename(&from, name(n + 1))?;
            }
        }
        if self.rotation.keep > 0 {
            std::fs::rename(self.dir.join(FILE_NAME), name(1))?;
        } else {
            std::fs::remove_file(self.dir.join(FILE_NAME))?;
        }
        *self = Writer::open(self.dir.clone(), self.rotation)?;
        Ok(())
    }
}

async fn write_loop(
    mut writer: Writer,
    mut receiver: mpsc::Receiver<AccessRecord>,
    dropped: Arc<AtomicU64>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(256);
    loop {
        let n = tokio::select! {
            n = receiver.recv_many(&mut batch, BATCH) => n,
            () = cancel.cancelled() => {
                receiver.close();
                receiver.recv_many(&mut batch, CHANNEL_CAPACITY).await
            }
        };
        if n == 0 {
            break;
        }
        for record in batch.drain(..) {
            if let Err(err) = writer.write(&record) {
                tracing::warn!(error = %err, "writing the proxy's access log failed");
            }
        }
        if let Err(err) = writer.file.flush() {
            tracing::warn!(error = %err, "flushing the proxy's access log failed");
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(lost, "the access log fell behind; records were dropped");
        }
        if cancel.is_cancelled() && receiver.is_closed() && receiver.is_empty() {
            break;
        }
        // A full batch means more are waiting: write them at once.
        if n < BATCH && !cancel.is_cancelled() {
            tokio::select! {
                () = tokio::time::sleep(FLUSH_INTERVAL) => {}
                () = cancel.cancelled() => {}
            }
        }
    }
    let _ = writer.file.flush();
}

/// Which records [`summarize`] counts.
#[derive(Debug, Clone, Default)]
pub struct StatsFilter {
    pub tool: Option<String>,
    pub since: Option<OffsetDateTime>,
}

/// Reads every access log file in `dir` (oldest first) and summarises the records the
/// filter selects. Lines that are not records (a torn last line) are skipped.
pub fn summarize(dir: &Path, filter: &StatsFilter) -> std::io::Result<WebStats> {
    let mut files: Vec<(u32, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(empty_stats(filter));
        }
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == FILE_NAME {
            files.push((0, entry.path()));
        } else if let Some(n) = name
            .strip_prefix(FILE_NAME)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse().ok())
        {
            files.push((n, entry.path()));
        }
    }
    files.sort_by_key(|file| std::cmp::Reverse(file.0));
    let mut acc = Accumulator::default();
    for (_, path) in files {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            // Rotated away between listing and opening.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            let Ok(record) = serde_json::from_str::<AccessRecord>(&line) else {
                continue;
            };
            if let Some(tool) = &filter.tool
                && record.tool.as_deref() != Some(tool.as_str())
            {
                continue;
            }
            let Ok(at) = OffsetDateTime::parse(&record.time, &Rfc3339) else {
                continue;
            };
            if filter.since.is_some_and(|since| at < since) {
                continue;
            }
            acc.add(record, at);
        }
    }
    Ok(acc.finish(filter))
}

fn empty_stats(filter: &StatsFilter) -> WebStats {
    Accumulator::default().finish(filter)
}

#[derive(Default)]
struct Accumulator {
    requests: u64,
    bytes: u64,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
    statuses: HashMap<u16, u64>,
    paths: HashMap<String, u64>,
    clients: HashMap<String, u64>,
    tools: HashMap<String, u64>,
    durations: Vec<f64>,
}

impl Accumulator {
    fn add(&mut self, record: AccessRecord, at: OffsetDateTime) {
        self.requests += 1;
        self.bytes += record.bytes;
        self.first = Some(self.first.map_or(at, |first| first.min(at)));
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
        *self.statuses.entry(record.status).or_default() += 1;
        let path = record
            .path
            .split_once('?')
            .map_or(record.path.as_str(), |(path, _)| path);
        *self.paths.entry(path.to_owned()).or_default() += 1;
        *self.clients.entry(record.client).or_default() += 1;
        *self
            .tools
            .entry(record.tool.unwrap_or_else(|| "-".to_owned()))
            .or_default() += 1;
        self.durations.push(record.duration_ms);
    }

    fn finish(mut self, filter: &StatsFilter) -> WebStats {
        self.durations.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            if self.durations.is_empty() {
                return 0.0;
            }
            let idx = ((self.durations.len() as f64 - 1.0) * p).round() as usize;
            self.durations[idx]
        };
        let mut statuses: Vec<WebStatsCount> = self
            .statuses
            .iter()
            .map(|(code, n)| WebStatsCount {
                key: code.to_string(),
                requests: *n,
            })
            .collect();
        statuses.sort_by(|a, b| a.key.cmp(&b.key));
        let format = |at: Option<OffsetDateTime>| at.and_then(|at| at.format(&Rfc3339).ok());
        let unique: HashSet<&String> = self.clients.keys().collect();
        WebStats {
            tool: filter.tool.clone(),
            since: format(filter.since),
            first: format(self.first),
            last: format(self.last),
            requests: self.requests,
            unique_clients: unique.len() as u64,
            bytes_sent: self.bytes,
            duration_p50_ms: percentile(0.5),
            duration_p99_ms: percentile(0.99),
            statuses,
            top_paths: top(&self.paths),
            top_clients: top(&self.clients),
            top_tools: top(&self.tools),
        }
    }
}

fn top(counts: &HashMap<String, u64>) -> Vec<WebStatsCount> {
    let mut rows: Vec<(&String, &u64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    rows.into_iter()
        .take(TOP)
        .map(|(key, n)| WebStatsCount {
            key: key.clone(),
            requests: *n,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tool: &str, path: &str, status: u16, client: &str, time: &str) -> AccessRecord {
        AccessRecord {
            time: time.to_owned(),
            tool: Some(tool.to_owned()),
            host: format!("{tool}.localhost"),
            method: "GET".to_owned(),
            path: path.to_owned(),
            status,
            bytes: 10,
            duration_ms: 1.5,
            client: client.to_owned(),
        }
    }

    #[tokio::test]
    async fn records_are_written_rotated_and_summarised_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let log = AccessLog::start(
            dir.path(),
            Rotation {
                max_file_bytes: 1000,
                keep: 3,
            },
            &tracker,
            cancel.clone(),
        )
        .unwrap();
        for i in 0..20 {
            let tool = if i % 2 == 0 { "alpha" } else { "beta" };
            let status = if i % 5 == 0 { 404 } else { 200 };
            log.record(record(
                tool,
                &format!("/p{}?q={i}", i % 3),
                status,
                &format!("192.0.2.{}", i % 4),
                "2030-01-01T00:00:00Z",
            ));
        }
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        assert!(dir.path().join("access.log.1").exists());
        assert!(!dir.path().join("access.log.4").exists());
        let all = summarize(dir.path(), &StatsFilter::default()).unwrap();
        // Rotation kept 3 old files of at most 1000 bytes: some early records are gone.
        assert!(all.requests > 0 && all.requests <= 20, "{all:?}");
        let newest = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
        assert!(newest.lines().count() >= 1);
        let alpha = summarize(
            dir.path(),
            &StatsFilter {
                tool: Some("alpha".to_owned()),
                since: None,
            },
        )
        .unwrap();
        assert!(alpha.top_tools.iter().all(|row| row.key == "alpha"));
        assert!(alpha.top_paths.iter().all(|row| !row.key.contains('?')));
        assert_eq!(alpha.bytes_sent, alpha.requests * 10);
    }

    #[test]
    fn the_summary_counts_statuses_paths_and_clients_and_honours_since() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = [
            record("a", "/x", 200, "c1", "2030-01-01T00:00:00Z"),
            record("a", "/x", 200, "c2", "2030-01-01T00:00:01Z"),
            record("a", "/y", 502, "c1", "2030-01-01T00:00:02Z"),
            record("b", "/x", 404, "c1", "2020-01-01T00:00:00Z"),
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .chain(["{torn".to_owned()])
        .collect();
        std::fs::write(dir.path().join(FILE_NAME), lines.join("\n")).unwrap();
        let stats = summarize(
            dir.path(),
            &StatsFilter {
                tool: None,
                since: Some(time::macros::datetime!(2029-01-01 0:00 UTC)),
            },
        )
        .unwrap();
        assert_eq!(stats.requests, 3);
        assert_eq!(stats.unique_clients, 2);
        assert_eq!(
            stats.statuses,
            vec![
                WebStatsCount {
                    key: "200".to_owned(),
                    requests: 2
                },
                WebStatsCount {
                    key: "502".to_owned(),
                    requests: 1
                }
            ]
        );
        assert_eq!(stats.top_paths[0].key, "/x");
        assert_eq!(stats.top_clients[0].key, "c1");
        assert_eq!(stats.first.as_deref(), Some("2030-01-01T00:00:00Z"));
        let empty = summarize(&dir.path().join("missing"), &StatsFilter::default()).unwrap();
        assert_eq!(empty.requests, 0);
    }
}
