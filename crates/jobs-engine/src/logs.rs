//! What jobs print, when they do not log to files: each line of stdout and stderr with
//! its time, stream, job and replica, appended to one JSON-lines file per job under the
//! logs directory (`<dir>/<tool>/<job>.jsonl`, rotated generations
//! `<job>.jsonl.<seq>`), and broadcast to followers.
//!
//! Invariants:
//! - A job never blocks on its output: lines are read as they come; past the tool's rate
//!   (a token bucket, [`LogsConfig::lines_per_second`] with a burst) lines are counted
//!   and dropped without being formatted or written, until the bucket holds a second's
//!   worth of lines again; then one `platform` line says how many were dropped (also
//!   when the job's output ends). A sustained flood thus yields a marker and a burst
//!   of lines about once a second.
//! - Every stored record is one JSON object on one line, serialized by us: a job's
//!   output only ever lands in the `message` string of a record with its own job,
//!   replica and stream (`stdout`/`stderr`), so it cannot forge another record.
//!   Over-long lines are split, invalid UTF-8 is replaced.
//! - Each record has a `seq`, nanoseconds since the epoch made strictly increasing per
//!   tool under the write lock: the order of the tool's log and the position a
//!   cursor names ([`query`]).
//! - Lines are broadcast to followers under the write lock, so in `seq` order; a
//!   [`Follower`] dedupes the seam between stored and live lines by `seq` and reads
//!   the lines it missed by falling behind back from the files.
//! - Retention is per tool: past [`LogsConfig::retention_size`] the oldest files go at
//!   once (when a write crosses the limit) and at every sweep; files last written more
//!   than [`LogsConfig::retention_age`] ago go at the sweep ([`sweep`]). Logs of deleted
//!   jobs stay until then.

mod follow;
mod query;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use crate::logs::follow::Follower;
pub use crate::logs::query::{LogPage, LogQuery, Order};

/// The longest line kept as one; longer output is split.
pub const MAX_LINE: usize = 16 * 1024;
/// Largest size of one file before it is rotated (smaller when the retention is small).
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// The stream of the platform's own lines (the drop marker), which no job can write to.
pub const PLATFORM_STREAM: &str = "platform";

/// One captured line, as stored and as the jobs API streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// ISO-8601 with seconds and `+00:00`, as the original.
    pub datetime: String,
    /// The replica, as the original's pod name.
    pub pod: String,
    /// The job, as the original's container name.
    pub container: String,
    /// `stdout`, `stderr`, or [`PLATFORM_STREAM`].
    pub stream: String,
    pub message: String,
    /// Nanoseconds since the epoch, strictly increasing within the tool's log.
    #[serde(default)]
    pub seq: u64,
}

/// Rate limit and retention of the captured output, per tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsConfig {
    /// Lines a tool's jobs may log per second, together; more are dropped.
    pub lines_per_second: u32,
    /// Lines a tool may log at once above the rate (the bucket's size).
    pub burst: u32,
    /// Bytes of logs kept per tool; the oldest files go first.
    pub retention_size: u64,
    /// Files last written longer ago than this are removed.
    pub retention_age: Duration,
    /// How often retention is enforced for every tool.
    pub sweep_interval: Duration,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            lines_per_second: 1000,
            burst: 10_000,
            retention_size: 256 * 1024 * 1024,
            retention_age: Duration::from_secs(7 * 86400),
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl LogsConfig {
    /// A file is rotated at this size, so the retention can drop whole generations
    /// while keeping most of the tool's allowance.
    fn rotate_at(&self) -> u64 {
        (self.retention_size / 8).clamp(4096, MAX_FILE)
    }
}

/// The log store of all jobs.
#[derive(Debug)]
pub struct Logs {
    dir: PathBuf,
    followers: Mutex<HashMap<(String, String), broadcast::Sender<LogLine>>>,
    writer: Mutex<Writer>,
}

/// Everything writes take the lock of: the configuration and each tool's state.
#[derive(Debug, Default)]
struct Writer {
    config: LogsConfig,
    tools: HashMap<String, ToolState>,
}

#[derive(Debug)]
struct ToolState {
    /// The last `seq` handed out; every line up to it is completely written.
    last_seq: u64,
    tokens: f64,
    refilled: Instant,
    /// Over the rate: lines are dropped until the bucket holds a second's worth again,
    /// so a flood yields one marker per second at most, not one per refilled token.
    dropping: bool,
    /// Bytes in the tool's directory, measured on first use.
    bytes: Option<u64>,
    jobs: HashMap<String, JobState>,
}

#[derive(Debug, Default)]
struct JobState {
    /// Size of the current file, measured on first use.
    size: Option<u64>,
    /// Lines dropped since the last marker, and the replica that printed the last.
    dropped: u64,
    dropped_pod: String,
}

impl ToolState {
    fn new(config: &LogsConfig) -> Self {
        Self {
            last_seq: now_nanos(),
            tokens: f64::from(config.burst.max(1)),
            refilled: Instant::now(),
            dropping: false,
            bytes: None,
            jobs: HashMap::new(),
        }
    }

    /// Takes one token of the bucket, refilled at the configured rate.
    fn take_token(&mut self, config: &LogsConfig, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let capacity = f64::from(config.burst.max(1));
        self.tokens = (self.tokens + elapsed * f64::from(config.lines_per_second)).min(capacity);
        let recovered = f64::from(config.lines_per_second.max(1)).min(capacity);
        if self.dropping && self.tokens < recovered {
            return false;
        }
        self.dropping = false;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropping = true;
            false
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq = now_nanos().max(self.last_seq + 1);
        self.last_seq
    }
}

impl Logs {
    /// Logs kept under `dir/<tool>/<job>.jsonl`, with the default [`LogsConfig`].
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            followers: Mutex::default(),
            writer: Mutex::default(),
        }
    }

    /// Replaces the rate limit and retention (at start, from the daemon's config).
    pub fn configure(&self, config: LogsConfig) {
        let mut writer = self.lock_writer();
        writer.config = config;
        for tool in writer.tools.values_mut() {
            tool.tokens = tool.tokens.min(f64::from(config.burst.max(1)));
        }
    }

    /// The rate limit and retention in force.
    pub fn config(&self) -> LogsConfig {
        self.lock_writer().config
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tool_dir(&self, tool: &str) -> PathBuf {
        self.dir.join(tool)
    }

    fn path(&self, tool: &str, job: &str) -> PathBuf {
        self.tool_dir(tool).join(format!("{job}.jsonl"))
    }

    /// Subscribes to the lines of a job written from now on; lines are lost when the
    /// receiver falls behind: [`Logs::follow_from`] follows without loss or duplicates.
    pub fn follow(&self, tool: &str, job: &str) -> broadcast::Receiver<LogLine> {
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        followers.retain(|_, sender| sender.receiver_count() > 0);
        followers
            .entry((tool.to_owned(), job.to_owned()))
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }

    /// Whether a job has any stored lines.
    pub fn has_logs(&self, tool: &str, job: &str) -> bool {
        self.job_files(tool, job)
            .iter()
            .any(|path| std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0))
    }

    /// The files of a job, oldest generation first, the current one last.
    fn job_files(&self, tool: &str, job: &str) -> Vec<PathBuf> {
        let mut rotated: Vec<(u64, PathBuf)> = list_files(&self.tool_dir(tool))
            .into_iter()
            .filter_map(|(name, path)| match parse_file_name(&name) {
                Some((file_job, Some(generation))) if file_job == job => Some((generation, path)),
                _ => None,
            })
            .collect();
        rotated.sort();
        let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
        files.push(self.path(tool, job));
        files
    }

    /// The last `limit` stored lines of a job (all when `None`), oldest first.
    pub fn tail(&self, tool: &str, job: &str, limit: Option<usize>) -> Vec<LogLine> {
        self.tail_with_horizon(tool, job, limit).0
    }

    /// [`Logs::tail`], and the horizon it read up to: every line of the job up to it
    /// is in the files, every later one is yet to be written.
    fn tail_with_horizon(
        &self,
        tool: &str,
        job: &str,
        limit: Option<usize>,
    ) -> (Vec<LogLine>, u64) {
        let horizon = self.horizon(tool);
        let mut generations: Vec<Vec<LogLine>> = Vec::new();
        let mut n_lines = 0;
        // Newest generation first, so a short tail reads only the last file.
        for file in self.job_files(tool, job).into_iter().rev() {
            let lines: Vec<LogLine> = read_lines(&file)
                .into_iter()
                .filter(|line| line.seq <= horizon)
                .collect();
            n_lines += lines.len();
            generations.push(lines);
            if limit.is_some_and(|limit| n_lines >= limit) {
                break;
            }
        }
        let mut lines: Vec<LogLine> = generations.into_iter().rev().flatten().collect();
        if let Some(limit) = limit {
            let skip = lines.len().saturating_sub(limit);
            lines.drain(..skip);
        }
        (lines, horizon)
    }

    /// The stored lines of a job with a `seq` above `after`, oldest first, and the
    /// horizon they were read up to.
    fn lines_after(&self, tool: &str, job: &str, after: u64) -> (Vec<LogLine>, u64) {
        let horizon = self.horizon(tool);
        let mut generations: Vec<Vec<LogLine>> = Vec::new();
        // Newest generation first, down to the file holding the line at `after`.
        for file in self.job_files(tool, job).into_iter().rev() {
            let lines = read_lines(&file);
            let reached = lines.first().is_some_and(|line| line.seq <= after);
            generations.push(
                lines
                    .into_iter()
                    .filter(|line| line.seq > after && line.seq <= horizon)
                    .collect(),
            );
            if reached {
                break;
            }
        }
        (generations.into_iter().rev().flatten().collect(), horizon)
    }

    /// The last `seq` completely written for `tool`: readers ignore anything later, so
    /// a line being written while they read is never half seen nor skipped.
    fn horizon(&self, tool: &str) -> u64 {
        let mut writer = self.lock_writer();
        let config = writer.config;
        writer
            .tools
            .entry(tool.to_owned())
            .or_insert_with(|| ToolState::new(&config))
            .last_seq
    }

    /// Offers one line a job printed: stored and handed to followers, or dropped (and
    /// counted for the marker) when the tool is over its rate.
    pub fn offer(&self, tool: &str, job: &str, pod: &str, stream: &str, bytes: &[u8]) {
        let mut records = Vec::with_capacity(2);
        let mut writer = self.lock_writer();
        let config = writer.config;
        let state = writer
            .tools
            .entry(tool.to_owned())
            .or_insert_with(|| ToolState::new(&config));
        let allowed = state.take_token(&config, Instant::now());
        let job_state = state.jobs.entry(job.to_owned()).or_default();
        if !allowed {
            job_state.dropped += 1;
            if job_state.dropped_pod != pod {
                pod.clone_into(&mut job_state.dropped_pod);
            }
            return;
        }
        if let Some(marker) = drop_marker(job, job_state, &config) {
            records.push(marker);
        }
        records.push(LogLine {
            datetime: now_text(),
            pod: pod.to_owned(),
            container: job.to_owned(),
            stream: stream.to_owned(),
            message: String::from_utf8_lossy(bytes).into_owned(),
            seq: 0,
        });
        self.write_locked(&mut writer, tool, job, &mut records);
        // Under the write lock, so followers receive a job's lines in `seq` order.
        self.broadcast(tool, job, records);
        drop(writer);
    }

    /// Writes the drop marker of a job now, if lines were dropped (when its output ends).
    pub fn flush_dropped(&self, tool: &str, job: &str) {
        let mut writer = self.lock_writer();
        let config = writer.config;
        let marker = writer
            .tools
            .get_mut(tool)
            .and_then(|state| state.jobs.get_mut(job))
            .and_then(|job_state| drop_marker(job, job_state, &config));
        let Some(marker) = marker else { return };
        let mut records = vec![marker];
        self.write_locked(&mut writer, tool, job, &mut records);
        // Under the write lock, so followers receive a job's lines in `seq` order.
        self.broadcast(tool, job, records);
        drop(writer);
    }

    fn broadcast(&self, tool: &str, job: &str, records: Vec<LogLine>) {
        let followers = self
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = followers.get(&(tool.to_owned(), job.to_owned())) {
            for line in records {
                let _ = sender.send(line);
            }
        }
    }

    /// Gives `records` their `seq`, appends them to the job's file (rotating it first when
    /// full) and enforces the tool's size limit when this write crossed it.
    fn write_locked(&self, writer: &mut Writer, tool: &str, job: &str, records: &mut [LogLine]) {
        let config = writer.config;
        let Some(state) = writer.tools.get_mut(tool) else {
            return;
        };
        let mut text = String::new();
        for record in records.iter_mut() {
            record.seq = state.next_seq();
            // Serializing escapes every control character: one record is one line.
            if let Ok(json) = serde_json::to_string(record) {
                text.push_str(&json);
                text.push('\n');
            }
        }
        let tool_dir = self.tool_dir(tool);
        let path = self.path(tool, job);
        let last_seq = state.last_seq;
        let job_state = state.jobs.entry(job.to_owned()).or_default();
        let res = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&tool_dir)?;
            let size = match job_state.size {
                Some(size) => size,
                None => std::fs::metadata(&path).map_or(0, |meta| meta.len()),
            };
            if size > 0 && size + text.len() as u64 > config.rotate_at() {
                std::fs::rename(&path, path.with_extension(format!("jsonl.{last_seq}")))?;
                job_state.size = Some(0);
            } else {
                job_state.size = Some(size);
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(text.as_bytes())?;
            job_state.size = job_state.size.map(|size| size + text.len() as u64);
            Ok(())
        })();
        if let Err(err) = res {
            job_state.size = None;
            tracing::warn!(%tool, %job, error = %err, "could not store a log line");
            return;
        }
        let bytes = match state.bytes {
            Some(bytes) => bytes + text.len() as u64,
            None => dir_size(&tool_dir),
        };
        state.bytes = Some(bytes);
        if bytes > config.retention_size {
            // Down to a file's size below the limit, so the next writes do not prune again.
            let target = config.retention_size.saturating_sub(config.rotate_at());
            prune(&tool_dir, &config, SystemTime::now(), target, state);
        }
    }

    /// Enforces retention for every tool once: files older than the age go, then the
    /// oldest files until the tool is within its size.
    pub fn sweep_once(&self, now: SystemTime) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(tool) = entry.file_name().into_string() else {
                continue;
            };
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let mut writer = self.lock_writer();
            let config = writer.config;
            let state = writer
                .tools
                .entry(tool.clone())
                .or_insert_with(|| ToolState::new(&config));
            prune(&entry.path(), &config, now, config.retention_size, state);
            if state.bytes == Some(0) {
                // Removed only when empty; a write racing this recreates it.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }

    /// Removes a tool's logs (when the tool is deleted).
    pub fn remove_tool(&self, tool: &str) {
        let mut writer = self.lock_writer();
        writer.tools.remove(tool);
        let _ = std::fs::remove_dir_all(self.tool_dir(tool));
    }
}

/// Runs [`Logs::sweep_once`] every [`LogsConfig::sweep_interval`] until `cancel`.
pub async fn sweep(logs: Arc<Logs>, cancel: CancellationToken) {
    loop {
        let interval = logs.config().sweep_interval;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let logs = logs.clone();
        if let Err(err) =
            tokio::task::spawn_blocking(move || logs.sweep_once(SystemTime::now())).await
        {
            tracing::warn!(error = %err, "the logs retention sweep failed");
        }
    }
}

/// The marker saying how many lines of `job` were dropped, if any were.
fn drop_marker(job: &str, job_state: &mut JobState, config: &LogsConfig) -> Option<LogLine> {
    if job_state.dropped == 0 {
        return None;
    }
    let dropped = std::mem::take(&mut job_state.dropped);
    Some(LogLine {
        datetime: now_text(),
        pod: std::mem::take(&mut job_state.dropped_pod),
        container: job.to_owned(),
        stream: PLATFORM_STREAM.to_owned(),
        message: format!(
            "toolforge: {dropped} lines of output were dropped: the tool's jobs printed more than {} lines per second",
            config.lines_per_second
        ),
        seq: 0,
    })
}

/// Removes the tool's files last written before the retention age, then the oldest
/// until at most `target` bytes remain; records what is left in `state`.
fn prune(
    tool_dir: &Path,
    config: &LogsConfig,
    now: SystemTime,
    target: u64,
    state: &mut ToolState,
) {
    let mut files: Vec<(SystemTime, u64, PathBuf)> = list_files(tool_dir)
        .into_iter()
        .filter(|(name, _)| parse_file_name(name).is_some())
        .filter_map(|(_, path)| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    files.sort();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    for (modified, len, path) in files {
        let too_old = now
            .duration_since(modified)
            .is_ok_and(|age| age > config.retention_age);
        if !too_old && total <= target {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => total -= len,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not remove an old log file");
            }
        }
    }
    state.bytes = Some(total);
    // The current files may have gone: measure them again on the next write.
    for job_state in state.jobs.values_mut() {
        job_state.size = None;
    }
}

/// `(job, None)` for `<job>.jsonl`, `(job, Some(generation))` for `<job>.jsonl.<n>`.
fn parse_file_name(name: &str) -> Option<(&str, Option<u64>)> {
    if let Some(job) = name.strip_suffix(".jsonl") {
        return (!job.is_empty()).then_some((job, None));
    }
    let (stem, generation) = name.rsplit_once('.')?;
    let generation = generation.parse().ok()?;
    let job = stem.strip_suffix(".jsonl")?;
    (!job.is_empty()).then_some((job, Some(generation)))
}

/// `(file name, path)` of the regular files in `dir`.
fn list_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .collect()
}

fn dir_size(dir: &Path) -> u64 {
    list_files(dir)
        .iter()
        .filter_map(|(_, path)| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum()
}

/// The records of one file; a line that does not parse (a torn write after a crash)
/// is skipped.
fn read_lines(path: &Path) -> Vec<LogLine> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, file);
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Ok(line) = serde_json::from_slice(&buf) {
                    lines.push(line);
                }
            }
        }
    }
    lines
}

/// Reads `pipe` line by line into `logs` until it closes.
pub async fn capture(
    logs: Arc<Logs>,
    tool: String,
    job: String,
    replica: u32,
    stream: &'static str,
    pipe: impl AsyncRead + Unpin,
) {
    let pod = format!("{job}-{replica}");
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Read at most MAX_LINE bytes at a time so a line without newline cannot grow
        // without bound.
        let read = {
            let mut limited = (&mut reader).take_line(MAX_LINE);
            limited.read_into(&mut buf).await
        };
        match read {
            Ok(0) => break,
            Ok(_) => {
                while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                logs.offer(&tool, &job, &pod, stream, &buf);
            }
            Err(err) => {
                tracing::debug!(%tool, %job, error = %err, "reading a job's output ended");
                break;
            }
        }
    }
    logs.flush_dropped(&tool, &job);
}

/// The current time as the original's log lines write it.
pub fn now_text() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .map(|text| text.replace('Z', "+00:00"))
        .unwrap_or_default()
}

fn now_nanos() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// Reading one line of at most a given length.
trait TakeLine {
    fn take_line(self, limit: usize) -> LineTaker<Self>
    where
        Self: Sized;
}

impl<R: AsyncBufReadExt + Unpin> TakeLine for &mut R {
    fn take_line(self, limit: usize) -> LineTaker<Self> {
        LineTaker {
            reader: self,
            limit,
        }
    }
}

struct LineTaker<R> {
    reader: R,
    limit: usize,
}

impl<R: AsyncBufReadExt + Unpin> LineTaker<&mut R> {
    /// Appends bytes up to and including a newline, or `limit` bytes, to `buf`.
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut total = 0;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(total);
            }
            let room = self.limit - total;
            let window = &available[..available.len().min(room)];
            let (take, done) = match window.iter().position(|b| *b == b'\n') {
                Some(idx) => (idx + 1, true),
                None => (window.len(), window.len() == room),
            };
            buf.extend_from_slice(&window[..take]);
            self.reader.consume(take);
            total += take;
            if done {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod follow_tests;
