//! What jobs print, when they do not log to files: each line of stdout and stderr with
//! its time, stream, job and replica, appended to one JSON-lines file per job under the
//! logs directory, and broadcast to followers.
//!
//! Invariant: a job can never block on its output: lines are read as they come and
//! written by the reader task; an over-long line is split, invalid UTF-8 is replaced,
//! and a file past its size cap is rotated (one previous generation is kept).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::broadcast;

/// The longest line kept as one; longer output is split.
pub const MAX_LINE: usize = 16 * 1024;
/// Size at which a job's log file is rotated.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One captured line, as stored and as the jobs API streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// ISO-8601 with seconds and `+00:00`, as the original.
    pub datetime: String,
    /// The replica, as the original's pod name.
    pub pod: String,
    /// The job, as the original's container name.
    pub container: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub message: String,
}

/// The log store of all jobs.
#[derive(Debug)]
pub struct Logs {
    dir: PathBuf,
    followers: Mutex<HashMap<(String, String), broadcast::Sender<LogLine>>>,
    write_lock: Mutex<()>,
}

impl Logs {
    /// Logs kept under `dir/<tool>/<job>.jsonl`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            followers: Mutex::default(),
            write_lock: Mutex::default(),
        }
    }

    fn path(&self, tool: &str, job: &str) -> PathBuf {
        self.dir.join(tool).join(format!("{job}.jsonl"))
    }

    /// Subscribes to the lines of a job written from now on.
    pub fn follow(&self, tool: &str, job: &str) -> broadcast::Receiver<LogLine> {
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        followers
            .entry((tool.to_owned(), job.to_owned()))
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }

    /// Whether a job has any stored lines.
    pub fn has_logs(&self, tool: &str, job: &str) -> bool {
        let path = self.path(tool, job);
        std::fs::metadata(&path).is_ok_and(|meta| meta.len() > 0)
            || std::fs::metadata(rotated(&path)).is_ok_and(|meta| meta.len() > 0)
    }

    /// The last `limit` stored lines of a job (all when `None`), oldest first.
    pub fn tail(&self, tool: &str, job: &str, limit: Option<usize>) -> Vec<LogLine> {
        let path = self.path(tool, job);
        let mut lines: Vec<LogLine> = Vec::new();
        for file in [rotated(&path), path] {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            lines.extend(
                text.lines()
                    .filter_map(|line| serde_json::from_str(line).ok()),
            );
        }
        if let Some(limit) = limit {
            let skip = lines.len().saturating_sub(limit);
            lines.drain(..skip);
        }
        lines
    }

    /// Appends a line and hands it to followers.
    pub fn append(&self, tool: &str, job: &str, line: LogLine) {
        let path = self.path(tool, job);
        let res = (|| -> std::io::Result<()> {
            let _guard = self
                .write_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if std::fs::metadata(&path).is_ok_and(|meta| meta.len() > MAX_FILE) {
                std::fs::rename(&path, rotated(&path))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            text.push('\n');
            file.write_all(text.as_bytes())
        })();
        if let Err(err) = res {
            tracing::warn!(%tool, %job, error = %err, "could not store a log line");
        }
        let followers = self
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = followers.get(&(tool.to_owned(), job.to_owned())) {
            let _ = sender.send(line);
        }
    }

    /// Removes a tool's logs (when the tool is deleted).
    pub fn remove_tool(&self, tool: &str) {
        let _ = std::fs::remove_dir_all(self.dir.join(tool));
    }
}

fn rotated(path: &Path) -> PathBuf {
    path.with_extension("jsonl.1")
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
                let message = String::from_utf8_lossy(&buf).into_owned();
                let line = LogLine {
                    datetime: now_text(),
                    pod: format!("{job}-{replica}"),
                    container: job.clone(),
                    stream: stream.to_owned(),
                    message,
                };
                logs.append(&tool, &job, line);
            }
            Err(err) => {
                tracing::debug!(%tool, %job, error = %err, "reading a job's output ended");
                break;
            }
        }
    }
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_stored_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Arc::new(Logs::new(dir.path().to_path_buf()));
        let mut follower = logs.follow("t", "j");
        let mut input = b"one\ntwo\r\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE + 10]);
        input.extend(b"\n\xff\xfebad\n");
        capture(
            logs.clone(),
            "t".into(),
            "j".into(),
            0,
            "stdout",
            &input[..],
        )
        .await;
        let lines = logs.tail("t", "j", None);
        let messages: Vec<_> = lines.iter().map(|l| l.message.len()).collect();
        assert_eq!(messages, [3, 3, MAX_LINE, 10, 9]);
        assert_eq!(lines[0].message, "one");
        assert_eq!(lines[4].message, "\u{fffd}\u{fffd}bad");
        assert_eq!(lines[0].pod, "j-0");
        assert_eq!(lines[0].container, "j");
        assert_eq!(logs.tail("t", "j", Some(2)).len(), 2);
        assert_eq!(follower.recv().await.unwrap().message, "one");
        assert!(
            lines[0].datetime.ends_with("+00:00"),
            "{}",
            lines[0].datetime
        );
        assert!(logs.has_logs("t", "j"));
        assert!(!logs.has_logs("t", "other"));
    }
}
